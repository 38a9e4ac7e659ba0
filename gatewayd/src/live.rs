//! `Live<T>`: an atomically swapped snapshot (the effective configuration) that the hot path
//! reads without waiting on writers.

use std::sync::Arc;

use parking_lot::RwLock;

/// The atomically swapped configuration snapshot the hot path reads: a read lock held only long
/// enough to clone an `Arc`, never across an await.
#[derive(Debug)]
pub struct Live<T> {
    inner: RwLock<Arc<T>>,
}

impl<T> Live<T> {
    pub fn new(value: T) -> Self {
        Live { inner: RwLock::new(Arc::new(value)) }
    }
    pub fn load(&self) -> Arc<T> {
        self.inner.read().clone()
    }
    pub fn store(&self, value: T) {
        *self.inner.write() = Arc::new(value);
    }
}
