//! [`CountingAllocator`]: a global allocator that counts the heap allocations of the threads
//! that ask for it, so tests and benches can prove a path allocates nothing.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

thread_local! {
    /// Whether this thread's allocations are counted.
    static COUNTED: Cell<bool> = const { Cell::new(false) };
    /// Allocations (and reallocations) this thread made while counted.
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

/// The system allocator, counting the allocations and reallocations made on threads that
/// called [`count_this_thread`](Self::count_this_thread). Install it with
/// `#[global_allocator]` in a test or bench binary; frees are not counted.
///
/// Counting touches only const-initialised thread-locals, so it never allocates itself.
///
/// # Examples
/// ```
/// use fio_buffer::CountingAllocator;
///
/// #[global_allocator]
/// static ALLOCATOR: CountingAllocator = CountingAllocator;
///
/// CountingAllocator::count_this_thread(true);
/// let before = CountingAllocator::allocations();
/// let boxed = Box::new(7);
/// assert_eq!(CountingAllocator::allocations() - before, 1);
/// let on_stack = [0u8; 64];
/// assert_eq!(CountingAllocator::allocations() - before, 1);
/// drop((boxed, on_stack));
/// CountingAllocator::count_this_thread(false);
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct CountingAllocator;

impl CountingAllocator {
    /// Starts (`true`) or stops counting the calling thread's allocations.
    pub fn count_this_thread(counted: bool) {
        COUNTED.with(|flag| flag.set(counted));
    }

    /// Allocations the calling thread made while counted.
    pub fn allocations() -> u64 {
        ALLOCATIONS.with(Cell::get)
    }

    fn note() {
        // `try_with`: while a thread is torn down its slots may be gone; nothing is counted.
        if COUNTED.try_with(Cell::get).unwrap_or(false) {
            let _ = ALLOCATIONS.try_with(|count| count.set(count.get() + 1));
        }
    }
}

// SAFETY: every method forwards to `System` with the caller's arguments unchanged, so the
// `GlobalAlloc` contract holds exactly as it does for `System`; counting has no effect on the
// memory handed out.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        Self::note();
        // SAFETY: the caller upholds `alloc`'s contract (non-zero size), passed on as is.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        Self::note();
        // SAFETY: as for `alloc`.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` was allocated by `System` (through this allocator) with `layout`.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        Self::note();
        // SAFETY: `ptr` came from `System` with `layout`, and the caller guarantees
        // `new_size` is valid for `layout`'s alignment.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}
