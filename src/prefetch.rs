//! A cache prefetch hint, for loops that visit many scattered objects (head
//! series, cached selections): asking for the next few ahead lets their
//! memory misses overlap instead of being paid one after another.

/// Hints the CPU to start loading the cache line at `p` (no effect on
/// targets without a prefetch instruction).
#[inline]
pub fn prefetch<T: ?Sized>(p: *const T) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        // SAFETY: a prefetch is only a hint; it never faults and never reads
        // memory architecturally, whatever the address.
        #[allow(unused_unsafe)]
        unsafe {
            _mm_prefetch(p.cast::<i8>(), _MM_HINT_T0)
        };
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}
