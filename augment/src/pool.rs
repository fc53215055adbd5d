//! Per-thread recycling of image and mask buffers.
//!
//! Why: a resampling transform needs a fresh output buffer, and a megabyte-sized buffer
//! freed and allocated again each call is handed back to the OS and page-faulted in anew
//! by glibc's allocator, which costs more than the transform. Buffers a transform replaces
//! go to a small per-thread free list and back out for the next output instead.
//! At most [`KEEP`] buffers a thread are kept.

use std::cell::RefCell;

const KEEP: usize = 6;
/// Below this, allocation is cheap and recycling is not worth a lookup.
const MIN: usize = 16 * 1024;

thread_local! {
    static FREE: RefCell<Vec<Vec<u8>>> = const { RefCell::new(Vec::new()) };
}

/// A buffer of `len` bytes (contents unspecified: callers overwrite every byte).
pub(crate) fn take(len: usize) -> Vec<u8> {
    if len >= MIN {
        let found = FREE.with(|f| {
            let mut f = f.borrow_mut();
            // The smallest kept buffer that is large enough.
            let best = f
                .iter()
                .enumerate()
                .filter(|(_, b)| b.capacity() >= len)
                .min_by_key(|(_, b)| b.capacity())
                .map(|(i, _)| i);
            best.map(|i| f.swap_remove(i))
        });
        if let Some(mut v) = found {
            // Truncating or growing within capacity: no allocation, and only new bytes are written.
            v.resize(len, 0);
            return v;
        }
    }
    vec![0; len]
}

/// An empty buffer with room for `len` bytes, for outputs built by `extend` (no zeroing).
pub(crate) fn take_empty(len: usize) -> Vec<u8> {
    let mut v = if len >= MIN {
        FREE.with(|f| {
            let mut f = f.borrow_mut();
            let best = f
                .iter()
                .enumerate()
                .filter(|(_, b)| b.capacity() >= len)
                .min_by_key(|(_, b)| b.capacity())
                .map(|(i, _)| i);
            best.map(|i| f.swap_remove(i))
        })
    } else {
        None
    }
    .unwrap_or_else(|| Vec::with_capacity(len));
    v.clear();
    v
}

/// Give a buffer back for reuse.
pub(crate) fn give(v: Vec<u8>) {
    if v.capacity() < MIN {
        return;
    }
    FREE.with(|f| {
        let mut f = f.borrow_mut();
        if f.len() < KEEP {
            f.push(v);
        } else if let Some(smallest) = f.iter_mut().min_by_key(|b| b.capacity()) {
            if smallest.capacity() < v.capacity() {
                *smallest = v;
            }
        }
    });
}
