//! Tutorial snippet 10: a coroutine that is never resumed never runs.
//!
//! It stays suspended until it is dropped; dropping a coroutine that never
//! started just drops its closure (`close()` would do the same and say so).

use cogen::{Coroutine, Status};

fn main() {
    let co = Coroutine::new(|co, ()| {
        println!("This never runs");
        co.suspend(());
    });

    // Oops, forgot to resume!
    // The coroutine just sits there in the "suspended" state.
    assert_eq!(co.status(), Status::Suspended);
}
