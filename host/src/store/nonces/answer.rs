//! Answers from the nonce writer to the requests waiting on it, delivered with one wake-up per
//! worker thread per batch.
//!
//! A request waiting for its nonce is a task on one of the server's worker threads. Woken from
//! the writer's thread, a task is pushed on its runtime's shared queue and the runtime is
//! unparked, a system call (an `eventfd` write) per task: a batch of fifty answers made fifty
//! of them, and as many returns from `epoll_wait` on the workers. So each worker thread that
//! calls [`on_this_thread`] gets a mailbox and a task of its own that empties it: the writer
//! leaves a batch's answers in the mailboxes and wakes each mailbox's task once; that task,
//! running on the worker, wakes the waiting requests there, which costs no system call. A
//! request recorded on any other thread (a test, the command line) is woken directly.

use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use futures_util::task::AtomicWaker;

use crate::store::StoreError;

/// What a waiting request is answered: whether its nonce was new, or the batch's error.
pub(super) type Outcome = Result<bool, Arc<StoreError>>;

#[derive(Debug)]
enum State {
    Waiting,
    Answered(Outcome),
    /// The writer dropped the request unanswered (it stopped).
    Gone,
}

/// One waiting request's answer and whom to wake.
#[derive(Debug)]
struct Slot {
    state: Mutex<State>,
    waker: AtomicWaker,
}

impl Slot {
    fn settle(&self, state: State) {
        *self.state.lock().unwrap_or_else(|e| e.into_inner()) = state;
    }
}

/// A worker thread's mailbox: the answered slots of requests waiting there, and the waker of
/// the task that empties it.
#[derive(Debug, Default)]
struct Mailbox {
    answered: Mutex<Vec<Arc<Slot>>>,
    emptier: AtomicWaker,
}

thread_local! {
    static MAILBOX: RefCell<Option<Arc<Mailbox>>> = const { RefCell::new(None) };
}

/// Gives this thread a mailbox and the task that empties it. Call it on each of the server's
/// worker threads, from within its runtime (it spawns a local task); calling it again on the
/// same thread does nothing.
pub fn on_this_thread() {
    MAILBOX.with(|mailbox| {
        if mailbox.borrow().is_some() {
            return;
        }
        let new = Arc::new(Mailbox::default());
        tokio::task::spawn_local(empty(new.clone()));
        *mailbox.borrow_mut() = Some(new);
    });
}

/// The task that wakes the requests whose answers arrived in `mailbox`. It never ends; it goes
/// with its thread's runtime.
async fn empty(mailbox: Arc<Mailbox>) {
    let mut taken = Vec::new();
    std::future::poll_fn(|cx| {
        // Registered before the mailbox is read: an answer left after the read wakes it again.
        mailbox.emptier.register(cx.waker());
        std::mem::swap(
            &mut *mailbox.answered.lock().unwrap_or_else(|e| e.into_inner()),
            &mut taken,
        );
        for slot in taken.drain(..) {
            slot.waker.wake();
        }
        Poll::<()>::Pending
    })
    .await;
}

/// A new request's two ends: the writer's and the waiting request's.
pub(super) fn channel() -> (Reply, Answer) {
    let slot = Arc::new(Slot {
        state: Mutex::new(State::Waiting),
        waker: AtomicWaker::new(),
    });
    let mailbox = MAILBOX.with(|m| m.borrow().clone());
    (
        Reply {
            slot: Some(slot.clone()),
            mailbox,
        },
        Answer { slot },
    )
}

/// Where the writer answers one request. Dropped unanswered, it answers that the writer is gone.
#[derive(Debug)]
pub(super) struct Reply {
    slot: Option<Arc<Slot>>,
    mailbox: Option<Arc<Mailbox>>,
}

impl Drop for Reply {
    fn drop(&mut self) {
        if let Some(slot) = self.slot.take() {
            slot.settle(State::Gone);
            slot.waker.wake();
        }
    }
}

/// The answers of one batch: each sent at once, the mailboxes they went to woken when the
/// batch's answers are all out (when this is dropped).
#[derive(Debug, Default)]
pub(super) struct Answers {
    mailboxes: Vec<Arc<Mailbox>>,
}

impl Answers {
    pub(super) fn send(&mut self, mut reply: Reply, outcome: Outcome) {
        let Some(slot) = reply.slot.take() else {
            return;
        };
        slot.settle(State::Answered(outcome));
        match reply.mailbox.take() {
            Some(mailbox) => {
                mailbox
                    .answered
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push(slot);
                if !self.mailboxes.iter().any(|m| Arc::ptr_eq(m, &mailbox)) {
                    self.mailboxes.push(mailbox);
                }
            }
            None => slot.waker.wake(),
        }
    }
}

impl Drop for Answers {
    fn drop(&mut self) {
        for mailbox in self.mailboxes.drain(..) {
            mailbox.emptier.wake();
        }
    }
}

/// The waiting request's end: resolves to the writer's answer, or `None` when the writer
/// dropped the request unanswered.
#[derive(Debug)]
pub(super) struct Answer {
    slot: Arc<Slot>,
}

impl Future for Answer {
    type Output = Option<Outcome>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        // Registered before the state is read: an answer settled after the read wakes it.
        self.slot.waker.register(cx.waker());
        let mut state = self.slot.state.lock().unwrap_or_else(|e| e.into_inner());
        match std::mem::replace(&mut *state, State::Gone) {
            State::Waiting => {
                *state = State::Waiting;
                Poll::Pending
            }
            State::Answered(outcome) => Poll::Ready(Some(outcome)),
            State::Gone => Poll::Ready(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::runtime;
    use super::*;

    /// Requests waiting on a thread with a mailbox are answered through it, from another
    /// thread, each with its own outcome; a request on a thread without one is woken directly;
    /// a reply dropped unanswered answers `None`.
    #[test]
    fn answers_reach_their_requests_through_the_mailbox_or_directly() {
        let local = tokio::task::LocalSet::new();
        runtime().block_on(local.run_until(async {
            on_this_thread();
            on_this_thread();
            let (replies, answers): (Vec<_>, Vec<_>) = (0..100).map(|_| channel()).unzip();
            assert!(replies.iter().all(|r| r.mailbox.is_some()));
            let waiting: Vec<_> = answers.into_iter().map(tokio::task::spawn_local).collect();
            // Every request polled once, waiting, before the answers come.
            tokio::task::yield_now().await;
            std::thread::spawn(move || {
                let mut answers = Answers::default();
                for (i, reply) in replies.into_iter().enumerate() {
                    answers.send(reply, Ok(i % 3 == 0));
                }
                assert_eq!(answers.mailboxes.len(), 1);
            })
            .join()
            .expect("the answering thread");
            for (i, task) in waiting.into_iter().enumerate() {
                let outcome = task.await.expect("the task").expect("an answer");
                assert_eq!(outcome.expect("no error"), i % 3 == 0);
            }
            let (reply, answer) = channel();
            drop(reply);
            assert!(answer.await.is_none());
        }));
        // A thread without a mailbox: woken directly.
        runtime().block_on(async {
            let (reply, answer) = std::thread::spawn(channel).join().expect("a channel");
            assert!(reply.mailbox.is_none());
            let waiting = tokio::spawn(answer);
            tokio::task::yield_now().await;
            std::thread::spawn(move || Answers::default().send(reply, Ok(true)));
            let outcome = waiting.await.expect("the task").expect("an answer");
            assert!(outcome.expect("no error"));
        });
    }
}
