//! A value the server swaps while it runs (the inventory, the DHCP
//! settings made from it): readers take the current one as an `Arc` and
//! keep it for as long as their request runs, so a swap never changes
//! anything under a request in flight.

use std::sync::{Arc, RwLock};

/// The current value, swapped whole.
#[derive(Debug)]
pub struct Live<T>(RwLock<Arc<T>>);

impl<T> Live<T> {
    /// Starts with `v`.
    pub fn new(v: T) -> Live<T> {
        Live(RwLock::new(Arc::new(v)))
    }

    /// The current value.
    pub fn load(&self) -> Arc<T> {
        self.0.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Replaces it; readers that took the old one keep it.
    pub fn store(&self, v: T) {
        self.store_arc(Arc::new(v));
    }

    /// Replaces it with a value already shared.
    pub fn store_arc(&self, v: Arc<T>) {
        *self.0.write().unwrap_or_else(|e| e.into_inner()) = v;
    }
}

impl<T: Default> Default for Live<T> {
    fn default() -> Live<T> {
        Live::new(T::default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reader_keeps_what_it_took_and_the_next_one_sees_the_new_value() {
        let l = Live::new(vec![1]);
        let held = l.load();
        l.store(vec![2, 3]);
        assert_eq!(*held, [1]);
        assert_eq!(*l.load(), [2, 3]);
    }
}
