//! Async clean-up from a `Drop`, where the test's own runtime may be the
//! one blocked in the drop.

use std::future::Future;

/// Runs the future `make` returns to completion on a runtime of its own,
/// on a thread of its own, and waits for it; `None` when that thread could
/// not run it (no runtime, or a panic).
pub fn run_aside<F, T>(make: impl FnOnce() -> F + Send + 'static) -> Option<T>
where
    F: Future<Output = T>,
    T: Send + 'static,
{
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .ok()?;
        Some(runtime.block_on(make()))
    })
    .join()
    .ok()
    .flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn runs_inside_a_runtime_that_is_blocked() {
        let answer = run_aside(|| async {
            tokio::time::sleep(std::time::Duration::from_millis(1)).await;
            42
        });
        assert_eq!(answer, Some(42));
    }
}
