"""Pure computation shared by both pipelines: no I/O, no configuration.

The one exception runs here, once: numba's kernel cache is keyed by the version of these sources
(``kernel_cache``), which must be set before any kernel module is imported.
"""

from tickwise.core.kernel_cache import apply_kernel_cache

apply_kernel_cache()
