//! The result store's calls block their thread (SQLite's disk and locks, PostgreSQL's round
//! trips). Made from the runner's async code, one such call on a runtime worker would hold up
//! every task queued there: other probes' looks and timers, whose timing is what flowtest
//! measures. [`blocking`] hands the worker's other tasks to another thread for the call's
//! duration on the multi-threaded runtime (`flowtest run`, the canary); elsewhere (tests on a
//! current-thread runtime, code outside any runtime) the call just runs. The real store's
//! adapter (`adapters.rs`) makes every call of the `ResultStore` port through it, so the
//! runner's own code never has to remember to.
use tokio::runtime::{Handle, RuntimeFlavor};

/// Run `call`, which may block, without holding up the runtime's other tasks.
pub(super) fn blocking<T>(call: impl FnOnce() -> T) -> T {
    match Handle::try_current().map(|h| h.runtime_flavor()) {
        Ok(RuntimeFlavor::MultiThread) => tokio::task::block_in_place(call),
        _ => call(),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::sync::Arc;
    use std::time::Duration;

    use super::blocking;

    /// Ticks a task on the runtime's only worker made while another task there blocked for
    /// 300 ms, through `call`.
    fn ticks_while_blocked(call: fn(Box<dyn FnOnce() + Send>)) -> u32 {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_time()
            .build()
            .unwrap();
        rt.block_on(async {
            let ticks = Arc::new(AtomicU32::new(0));
            let counted = Arc::clone(&ticks);
            let ticker = tokio::spawn(async move {
                loop {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                    counted.fetch_add(1, Ordering::Relaxed);
                }
            });
            // Let the ticker start on the worker, then block there.
            tokio::time::sleep(Duration::from_millis(20)).await;
            let before = ticks.load(Ordering::Relaxed);
            tokio::spawn(async move {
                call(Box::new(|| std::thread::sleep(Duration::from_millis(300))));
            })
            .await
            .unwrap();
            ticker.abort();
            ticks.load(Ordering::Relaxed) - before
        })
    }

    #[test]
    fn other_tasks_go_on_while_a_store_call_blocks() {
        let ticks = ticks_while_blocked(blocking);
        // Up to 60 at 5 ms; a loaded machine makes fewer, never none.
        assert!(ticks >= 10, "{ticks} ticks during a 300 ms blocking call");
    }

    #[test]
    fn a_plain_call_would_have_held_them_up() {
        // What the test above guards against: the same call made directly.
        let ticks = ticks_while_blocked(|f| f());
        assert!(
            ticks <= 2,
            "{ticks} ticks while the only worker was blocked"
        );
    }

    #[tokio::test]
    async fn on_a_current_thread_runtime_the_call_just_runs() {
        assert_eq!(blocking(|| 7), 7);
    }

    #[test]
    fn outside_any_runtime_the_call_just_runs() {
        assert_eq!(blocking(|| 7), 7);
    }
}
