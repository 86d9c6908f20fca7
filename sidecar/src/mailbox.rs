//! A connection's bounded queue of things from the hub.
//!
//! Like tokio's bounded mpsc, but it allocates nothing until something is queued and gives
//! its memory back once drained: an idle connection (the common case by far) then costs a
//! hundred bytes here instead of a pre-allocated block of slots, and a burst does not leave a
//! large buffer behind.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use tokio::sync::Notify;

use crate::hub::Outbound;

struct Shared {
    queue: Mutex<VecDeque<Outbound>>,
    ready: Notify,
    capacity: usize,
}

/// The hub's end.
#[derive(Clone)]
pub struct Sender(Arc<Shared>);

/// The queue was full; the item was dropped.
#[derive(Debug)]
pub struct Full;

/// The connection's end.
pub struct Receiver(Arc<Shared>);

pub fn channel(capacity: usize) -> (Sender, Receiver) {
    let shared = Arc::new(Shared { queue: Mutex::new(VecDeque::new()), ready: Notify::new(), capacity: capacity.max(1) });
    (Sender(shared.clone()), Receiver(shared))
}

impl std::fmt::Debug for Sender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("mailbox::Sender")
    }
}

impl Sender {
    pub fn try_send(&self, item: Outbound) -> Result<(), Full> {
        {
            let mut q = self.0.queue.lock().unwrap();
            if q.len() >= self.0.capacity {
                return Err(Full);
            }
            q.push_back(item);
        }
        // Stores a permit when the receiver is not waiting yet, so no wake-up is lost.
        self.0.ready.notify_one();
        Ok(())
    }
}

/// Queues shorter than this keep their buffer; longer ones (after a burst) are freed.
const KEEP_CAPACITY: usize = 16;

impl Receiver {
    pub fn try_recv(&mut self) -> Option<Outbound> {
        let mut q = self.0.queue.lock().unwrap();
        let item = q.pop_front();
        if q.is_empty() && q.capacity() > KEEP_CAPACITY {
            *q = VecDeque::new();
        }
        item
    }

    /// Waits for the next item. Cancel-safe: an item is only taken when this returns.
    pub async fn recv(&mut self) -> Outbound {
        loop {
            if let Some(item) = self.try_recv() {
                return item;
            }
            self.0.ready.notified().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn delivers_in_order_and_refuses_when_full() {
        let (tx, mut rx) = channel(2);
        tx.try_send(Outbound::Resync).unwrap();
        tx.try_send(Outbound::Kick("a".into())).unwrap();
        assert!(tx.try_send(Outbound::Resync).is_err());
        assert!(matches!(rx.recv().await, Outbound::Resync));
        assert!(matches!(rx.try_recv(), Some(Outbound::Kick(_))));
        assert!(rx.try_recv().is_none());
    }

    #[tokio::test]
    async fn wakes_a_waiting_receiver() {
        let (tx, mut rx) = channel(4);
        let waiter = tokio::spawn(async move { rx.recv().await });
        tokio::task::yield_now().await;
        tx.try_send(Outbound::Resync).unwrap();
        assert!(matches!(waiter.await.unwrap(), Outbound::Resync));
    }

    #[test]
    fn gives_memory_back_after_a_burst() {
        let (tx, mut rx) = channel(1000);
        for _ in 0..500 {
            tx.try_send(Outbound::Resync).unwrap();
        }
        while rx.try_recv().is_some() {}
        assert_eq!(tx.0.queue.lock().unwrap().capacity(), 0);
    }
}
