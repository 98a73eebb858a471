//! Tutorial snippet 07: async / await, done right.
//!
//! The tutorial's `await` resumes its coroutine exactly twice, so with a
//! body that waits twice it returns nothing and the Lua script crashes on
//! `result.user`. Here the fetch is a task, and `join` waits until it has
//! really finished — however many times it waits — and hands back its
//! value, or its panic as an error.

use std::time::Duration;

use cogen::event_loop::{EventLoop, JoinHandle, sleep, spawn};

struct UserData {
    user: u32,
    posts: Vec<&'static str>,
}

/// Starts fetching a user's data in a task of its own.
fn fetch_user_data(user_id: u32) -> JoinHandle<UserData> {
    spawn(move || {
        println!("Fetching user {user_id}");
        sleep(Duration::from_millis(5)); // simulate network delay

        println!("Fetching posts for user {user_id}");
        sleep(Duration::from_millis(5)); // simulate another network call

        UserData {
            user: user_id,
            posts: vec!["post1", "post2"],
        }
    })
}

fn main() {
    let ev = EventLoop::new();
    let result = ev
        .block_on(|| {
            let task = fetch_user_data(42);
            task.join()
        })
        .expect("no deadlock")
        .expect("the fetch task neither panicked nor was cancelled");
    println!("Got result:\t{}\t{}", result.user, result.posts.len());
}
