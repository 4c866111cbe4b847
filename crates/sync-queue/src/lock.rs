//! Waiting for sled's directory lock.

use std::fs::{File, TryLockError};
use std::path::Path;
use std::time::{Duration, Instant};

/// Waits up to `wait` until no handle holds the lock of the sled database
/// in `dir` (sled takes an exclusive lock on its `db` file); whether it is
/// free. sled releases the lock only once its I/O threads let go of the
/// files, a moment after the last handle is dropped, so a reopen in the
/// same process (switching users, tests) can briefly find it held; a lock
/// still held after the wait is most likely another process's, which
/// opening then reports.
pub fn wait_until_unlocked(dir: &Path, wait: Duration) -> bool {
    let deadline = Instant::now() + wait;
    let Ok(file) = File::open(dir.join("db")) else {
        // No database yet, or none that can be read: nothing to wait for.
        return true;
    };
    loop {
        match file.try_lock() {
            Ok(()) => {
                let _ = file.unlock();
                return true;
            }
            Err(TryLockError::WouldBlock) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(_) => return false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_for_a_dropped_handle_and_gives_up_on_a_held_one() {
        let dir = tempfile::tempdir().unwrap();
        assert!(
            wait_until_unlocked(dir.path(), Duration::ZERO),
            "no database yet"
        );
        let db = sled::open(dir.path()).unwrap();
        assert!(
            !wait_until_unlocked(dir.path(), Duration::from_millis(50)),
            "an open database holds the lock"
        );
        drop(db);
        assert!(wait_until_unlocked(dir.path(), Duration::from_secs(5)));
        sled::open(dir.path()).unwrap();
    }
}
