//! One value per thread, made on that thread the first time it asks.
//!
//! actix runs one single-threaded runtime per worker. Whatever spawns a
//! task (the join and hold batchers) or is driven by one (a Redis
//! connection) stays on the runtime that made it, so a worker that shares
//! another thread's wakes that thread on every use. Each thread gets its
//! own instead.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::RwLock;
use std::thread::ThreadId;

/// Values by the thread that made them.
pub struct PerThread<T> {
    values: RwLock<HashMap<ThreadId, T>>,
}

impl<T> Default for PerThread<T> {
    fn default() -> Self {
        PerThread { values: RwLock::new(HashMap::new()) }
    }
}

impl<T: Clone> PerThread<T> {
    /// This thread's value, made now by `make` if it has none yet.
    pub fn get_or_make(&self, make: impl FnOnce() -> T) -> T {
        match self.get_or_try_make(|| Ok::<T, Infallible>(make())) {
            Ok(value) => value,
            Err(never) => match never {},
        }
    }

    /// This thread's value, made now by `make` if it has none yet; a value
    /// `make` failed to make is not kept.
    pub fn get_or_try_make<E>(&self, make: impl FnOnce() -> Result<T, E>) -> Result<T, E> {
        let thread = std::thread::current().id();
        if let Some(value) = self.values.read().ok().and_then(|v| v.get(&thread).cloned()) {
            return Ok(value);
        }
        let made = make()?;
        let mut values = self.values.write().unwrap_or_else(|e| e.into_inner());
        Ok(values.entry(thread).or_insert(made).clone())
    }

    /// Values over all threads.
    pub fn count(&self) -> usize {
        self.values.read().map_or(0, |v| v.len())
    }
}
