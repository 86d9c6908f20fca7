//! A connection's bounded queue of things from the hub, and its ways of ending.
//!
//! Like tokio's bounded mpsc, but it allocates nothing until something is queued and gives
//! its memory back once drained: an idle connection (the common case by far) then costs a
//! hundred bytes here instead of a pre-allocated block of slots, and a burst does not leave a
//! large buffer behind.
//!
//! The queue is bounded twice: in frames ([`Outbound::weight`], `CHAT_OUTBOUND_QUEUE`) and in
//! bytes ([`Outbound::bytes`], `CHAT_OUTBOUND_QUEUE_BYTES`). Frames alone let a client that
//! never reads hold 1024 frames of up to 64 KiB each — three such clients took a node from 197 to
//! 449 MB (issue 17); the byte bound ends such a connection after a fixed amount, whatever the
//! frames weigh. Bytes are counted as the frames' encoded sizes, so a message shared by many
//! queues counts in each: the bound is on how far one client may fall behind, not on the
//! node's memory as a whole.
//!
//! The queue also carries the reasons a session must stop that do not come from its client —
//! the queue overflowed (the client is too slow), the node is shutting down, or it cannot reach
//! Redis — as flags that the receiver sees before any queued item. So a session waits on this one queue
//! and its transport, and needs no further wake-up sources of its own (each costs memory in
//! every idle connection's task).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::Notify;

use crate::hub::Outbound;

const OVERFLOWED: u8 = 1;
const SHUT_DOWN: u8 = 2;
const BACKEND_DOWN: u8 = 4;

struct Queue {
    items: VecDeque<Outbound>,
    /// The items' [`Outbound::weight`]s summed: what `capacity` bounds.
    weight: usize,
    /// The items' [`Outbound::bytes`] summed: what `capacity_bytes` bounds.
    bytes: usize,
}

struct Shared {
    queue: Mutex<Queue>,
    ready: Notify,
    capacity: usize,
    capacity_bytes: usize,
    ended: AtomicU8,
}

/// The hub's end.
#[derive(Clone)]
pub struct Sender(Arc<Shared>);

/// Something did not fit; it was dropped and the receiver will see [`Ended::Overflowed`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Full {
    /// This item overflowed the frame bound (the first refusal of this queue).
    Frames,
    /// This item overflowed the byte bound (the first refusal of this queue).
    Bytes,
    /// The queue had already overflowed: nothing more is queued for a connection that ends.
    Already,
}

/// Why the receiver must stop, ahead of anything still queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// Something did not fit: the connection is too slow and resumes from its cursors.
    Overflowed,
    /// The node is shutting down.
    ShutDown,
    /// The node cannot reach Redis: reconnect with backoff and resume.
    BackendDown,
}

/// The connection's end.
pub struct Receiver(Arc<Shared>);

/// A queue for at most `capacity` frames and `capacity_bytes` bytes (an item larger than
/// `capacity_bytes` on its own still fits an empty queue: a single frame is bounded by the
/// frame size limit already).
pub fn channel(capacity: usize, capacity_bytes: usize) -> (Sender, Receiver) {
    let shared = Arc::new(Shared {
        queue: Mutex::new(Queue { items: VecDeque::new(), weight: 0, bytes: 0 }),
        ready: Notify::new(),
        capacity: capacity.max(1),
        capacity_bytes: capacity_bytes.max(1),
        ended: AtomicU8::new(0),
    });
    (Sender(shared.clone()), Receiver(shared))
}

impl std::fmt::Debug for Sender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("mailbox::Sender")
    }
}

impl Sender {
    pub fn try_send(&self, item: Outbound) -> Result<(), Full> {
        self.send_all(std::iter::once(item))
    }

    /// Queues every item in order, then wakes the receiver once.
    pub fn send_all(&self, items: impl Iterator<Item = Outbound>) -> Result<(), Full> {
        if self.0.ended.load(Ordering::Acquire) & OVERFLOWED != 0 {
            return Err(Full::Already);
        }
        let mut queued = false;
        let mut full = None;
        {
            let mut q = self.0.queue.lock().unwrap();
            for item in items {
                let (weight, bytes) = (item.weight(), item.bytes());
                if q.weight + weight > self.0.capacity {
                    full = Some(Full::Frames);
                    break;
                }
                if q.bytes + bytes > self.0.capacity_bytes && !q.items.is_empty() {
                    full = Some(Full::Bytes);
                    break;
                }
                q.weight += weight;
                q.bytes += bytes;
                q.items.push_back(item);
                queued = true;
            }
        }
        if let Some(full) = full {
            // Only the first refusal names a bound, so each overflow is counted once.
            let first = self.end(OVERFLOWED);
            return Err(if first { full } else { Full::Already });
        }
        if queued {
            // Stores a permit when the receiver is not waiting yet, so no wake-up is lost.
            self.0.ready.notify_one();
        }
        Ok(())
    }

    /// Tells the receiver the node is shutting down (never refused, unlike an item).
    pub fn shut_down(&self) {
        self.end(SHUT_DOWN);
    }

    /// Tells the receiver that the node cannot reach Redis.
    pub fn backend_down(&self) {
        self.end(BACKEND_DOWN);
    }

    /// Sets `why`; true if it was not set before.
    fn end(&self, why: u8) -> bool {
        let before = self.0.ended.fetch_or(why, Ordering::AcqRel);
        self.0.ready.notify_one();
        before & why == 0
    }
}

/// Queues shorter than this keep their buffer; longer ones (after a burst) are freed.
const KEEP_CAPACITY: usize = 16;

impl Receiver {
    fn ended(&self) -> Option<Ended> {
        match self.0.ended.load(Ordering::Acquire) {
            0 => None,
            // A shutdown wins: the client should reconnect elsewhere, not think it is slow.
            f if f & SHUT_DOWN != 0 => Some(Ended::ShutDown),
            f if f & BACKEND_DOWN != 0 => Some(Ended::BackendDown),
            _ => Some(Ended::Overflowed),
        }
    }

    /// The next item if one is queued.
    pub fn try_recv(&mut self) -> Result<Option<Outbound>, Ended> {
        if let Some(why) = self.ended() {
            return Err(why);
        }
        let mut q = self.0.queue.lock().unwrap();
        let item = q.items.pop_front();
        if let Some(item) = &item {
            q.weight -= item.weight();
            q.bytes -= item.bytes();
        }
        if q.items.is_empty() && q.items.capacity() > KEEP_CAPACITY {
            q.items = VecDeque::new();
        }
        Ok(item)
    }

    /// Waits for the next item. Cancel-safe: an item is only taken when this returns.
    pub async fn recv(&mut self) -> Result<Outbound, Ended> {
        loop {
            if let Some(item) = self.try_recv()? {
                return Ok(item);
            }
            self.0.ready.notified().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn delivers_in_order_and_ends_when_full() {
        let (tx, mut rx) = channel(2, usize::MAX);
        tx.try_send(Outbound::Resync).unwrap();
        tx.try_send(Outbound::Kick("a".into())).unwrap();
        assert!(matches!(rx.recv().await, Ok(Outbound::Resync)));
        tx.try_send(Outbound::Resync).unwrap();
        assert!(tx.try_send(Outbound::Resync).is_err());
        assert_eq!(rx.try_recv().err(), Some(Ended::Overflowed), "seen before what is still queued");
        assert_eq!(rx.recv().await.err(), Some(Ended::Overflowed));
    }

    #[tokio::test]
    async fn a_batch_arrives_in_order_and_ends_the_queue_if_it_does_not_fit() {
        let (tx, mut rx) = channel(3, usize::MAX);
        tx.send_all([Outbound::Resync, Outbound::Kick("a".into())].into_iter()).unwrap();
        assert!(matches!(rx.recv().await, Ok(Outbound::Resync)));
        assert!(matches!(rx.try_recv(), Ok(Some(Outbound::Kick(_)))));
        assert!(tx.send_all((0..4).map(|_| Outbound::Resync)).is_err());
        assert_eq!(rx.try_recv().err(), Some(Ended::Overflowed));
    }

    #[tokio::test]
    async fn wakes_a_waiting_receiver() {
        let (tx, mut rx) = channel(4, usize::MAX);
        let waiter = tokio::spawn(async move { rx.recv().await });
        tokio::task::yield_now().await;
        tx.try_send(Outbound::Resync).unwrap();
        assert!(matches!(waiter.await.unwrap(), Ok(Outbound::Resync)));
    }

    #[tokio::test]
    async fn a_shutdown_reaches_a_waiting_receiver_and_wins_over_an_overflow() {
        let (tx, mut rx) = channel(1, usize::MAX);
        let waiter = tokio::spawn(async move {
            let first = rx.recv().await;
            (first, rx)
        });
        tokio::task::yield_now().await;
        tx.shut_down();
        let (first, mut rx) = waiter.await.unwrap();
        assert_eq!(first.err(), Some(Ended::ShutDown));
        tx.try_send(Outbound::Resync).unwrap();
        assert!(tx.try_send(Outbound::Resync).is_err());
        assert_eq!(rx.try_recv().err(), Some(Ended::ShutDown));
    }

    #[tokio::test]
    async fn a_batch_takes_as_many_slots_as_it_has_messages() {
        let msg = |seq| {
            std::sync::Arc::new(crate::hub::LiveMessage::new("t".into(), seq, "x"))
        };
        let (tx, mut rx) = channel(3, usize::MAX);
        tx.try_send(Outbound::Batch(vec![msg(1), msg(2)].into())).unwrap();
        tx.try_send(Outbound::Message(msg(3))).unwrap();
        assert!(matches!(rx.recv().await, Ok(Outbound::Batch(b)) if b.len() == 2));
        tx.try_send(Outbound::Batch(vec![msg(4), msg(5)].into())).unwrap();
        assert!(tx.try_send(Outbound::Resync).is_err(), "3 of 3 slots taken");
        assert_eq!(rx.try_recv().err(), Some(Ended::Overflowed));
    }

    #[tokio::test]
    async fn the_byte_bound_ends_the_queue_before_the_frame_bound() {
        let msg = |seq, len| Outbound::Message(std::sync::Arc::new(crate::hub::LiveMessage::new("t".into(), seq, &"x".repeat(len))));
        let (tx, mut rx) = channel(100, 1000);
        // A frame of 400 bytes of text weighs 402 encoded (2 bytes of header).
        tx.try_send(msg(1, 400)).unwrap();
        tx.try_send(msg(2, 400)).unwrap();
        assert!(matches!(rx.recv().await, Ok(Outbound::Message(m)) if m.seq == 1), "taking one frees its bytes");
        tx.try_send(msg(3, 400)).unwrap();
        assert_eq!(tx.try_send(msg(4, 400)).unwrap_err(), Full::Bytes, "1206 bytes > 1000, with 3 of 100 frames");
        assert_eq!(tx.try_send(Outbound::Resync).unwrap_err(), Full::Already, "counted once, and nothing more is queued");
        assert_eq!(rx.try_recv().err(), Some(Ended::Overflowed));
        let (tx, _rx) = channel(100, 1000);
        tx.try_send(msg(1, 5000)).expect("one frame larger than the bound fits an empty queue");
        assert_eq!(tx.try_send(msg(2, 1)).unwrap_err(), Full::Bytes);
        let (tx, _rx) = channel(2, 1 << 20);
        tx.send_all([msg(1, 1), msg(2, 1)].into_iter()).unwrap();
        assert_eq!(tx.try_send(msg(3, 1)).unwrap_err(), Full::Frames);
    }

    #[test]
    fn gives_memory_back_after_a_burst() {
        let (tx, mut rx) = channel(1000, usize::MAX);
        for _ in 0..500 {
            tx.try_send(Outbound::Resync).unwrap();
        }
        while rx.try_recv().unwrap().is_some() {}
        assert_eq!(tx.0.queue.lock().unwrap().items.capacity(), 0);
    }
}
