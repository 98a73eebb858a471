//! The loop's `tracing` events (feature `tracing`): a span per task, named
//! `task` with its `id` and `name`, entered around each of its steps; and
//! events at target `cogen::event_loop` for spawn, park (with the reason),
//! wake, finish, panic (from the panic hook of `observe.rs`), deadlock and
//! the watchdog. Without the feature every function here is empty and
//! inlined away.

#[cfg(feature = "tracing")]
mod imp {
    use std::cell::RefCell;
    use std::collections::HashMap;
    use std::panic::AssertUnwindSafe;

    use super::super::current::InSubscriber;
    use super::super::error::StuckTask;
    use super::super::task::Header;
    use super::super::watchdog::WatchdogReport;

    /// The span of each live task, by id (spans are kept beside the tasks,
    /// not in their headers, so the feature costs the others nothing).
    #[derive(Default)]
    pub(crate) struct Spans(RefCell<HashMap<u64, tracing::Span>>);

    /// Runs `f`, which calls into the subscriber (user code), so that its
    /// panic cannot leave the loop's bookkeeping half done: the panic hook
    /// has reported it, and it goes no further. No task can wait inside it
    /// (see [`InSubscriber`]), so the only unwinding that can come out of
    /// it is a panic.
    fn quietly(f: impl FnOnce()) {
        let _no_waits = InSubscriber::enter();
        if let Err(payload) = std::panic::catch_unwind(AssertUnwindSafe(f)) {
            crate::error::drop_quietly(payload);
        }
    }

    /// A task's span while it runs a step: left (the subscriber's `exit`)
    /// quietly when dropped.
    pub(crate) struct Entered(Option<tracing::span::EnteredSpan>);

    impl Drop for Entered {
        fn drop(&mut self) {
            if let Some(entered) = self.0.take() {
                quietly(|| drop(entered));
            }
        }
    }

    impl Spans {
        pub(crate) fn spawned(&self, h: &Header) {
            let mut made = None;
            quietly(|| {
                let span = tracing::trace_span!(target: "cogen::event_loop", "task", id = h.id, name = h.name());
                tracing::trace!(target: "cogen::event_loop", parent: &span, "spawn");
                made = Some(span);
            });
            if let Some(span) = made {
                self.0.borrow_mut().insert(h.id, span);
            }
        }

        pub(crate) fn enter(&self, h: &Header) -> Entered {
            // No borrow of the map while the subscriber runs (its
            // `clone_span`, `enter`): it may spawn.
            let Some(span) = self.0.borrow_mut().remove(&h.id) else {
                return Entered(None);
            };
            let mut entered = None;
            quietly(|| entered = Some(span.clone().entered()));
            self.0.borrow_mut().insert(h.id, span);
            Entered(entered)
        }

        pub(crate) fn finished(&self, h: &Header) {
            let span = self.0.borrow_mut().remove(&h.id);
            if let Some(span) = span {
                quietly(|| {
                    tracing::trace!(target: "cogen::event_loop", parent: &span, "finish");
                    drop(span);
                });
            }
        }
    }

    pub(crate) fn parked(h: &Header) {
        let Some(reason) = h.reason.get() else { return };
        quietly(|| tracing::trace!(target: "cogen::event_loop", task = h.id, ?reason, "park"));
    }

    pub(crate) fn woken(id: u64) {
        quietly(|| tracing::trace!(target: "cogen::event_loop", task = id, "wake"));
    }

    pub(crate) fn panicked(h: &Header, info: &std::panic::PanicHookInfo<'_>) {
        let message = info
            .payload_as_str()
            .unwrap_or("(a panic payload that is not a string)");
        quietly(
            || tracing::error!(target: "cogen::event_loop", task = h.id, name = h.name(), message, "task panicked"),
        );
    }

    pub(crate) fn deadlock(stuck: &[StuckTask]) {
        for task in stuck {
            quietly(
                || tracing::error!(target: "cogen::event_loop", task = task.id, name = task.name.as_deref(), waiting_on = %task.waiting_on, "deadlock: task stuck"),
            );
        }
    }

    pub(crate) fn watchdog(report: &WatchdogReport) {
        quietly(
            || tracing::warn!(target: "cogen::event_loop", task = report.task_id, name = report.task_name.as_deref(), running_for = ?report.running_for, "watchdog: task has not yielded"),
        );
    }
}

#[cfg(not(feature = "tracing"))]
mod imp {
    use super::super::error::StuckTask;
    use super::super::task::Header;
    use super::super::watchdog::WatchdogReport;

    /// Nothing to keep without the feature.
    #[derive(Default)]
    pub(crate) struct Spans(());

    impl Spans {
        #[inline(always)]
        pub(crate) fn spawned(&self, _: &Header) {}
        #[inline(always)]
        pub(crate) fn enter(&self, _: &Header) {}
        #[inline(always)]
        pub(crate) fn finished(&self, _: &Header) {}
    }

    #[inline(always)]
    pub(crate) fn parked(_: &Header) {}
    #[inline(always)]
    pub(crate) fn woken(_: u64) {}
    #[inline(always)]
    pub(crate) fn panicked(_: &Header, _: &std::panic::PanicHookInfo<'_>) {}
    #[inline(always)]
    pub(crate) fn deadlock(_: &[StuckTask]) {}
    #[inline(always)]
    pub(crate) fn watchdog(_: &WatchdogReport) {}
}

pub(crate) use imp::*;
