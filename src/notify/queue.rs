//! A bounded FIFO of alerts that drops the oldest when full.
//!
//! Follows Prometheus `notifier/manager.go` (`Send`): a batch larger than the
//! capacity keeps only its newest alerts, and a full queue sheds its oldest
//! entries in favour of the new ones. Every dropped alert is counted.

use std::collections::VecDeque;
use std::sync::Arc;

use parking_lot::Mutex;

use super::alert::Alert;

/// The queue; all operations take a short lock and never wait.
#[derive(Debug)]
pub struct AlertQueue {
    items: Mutex<VecDeque<Arc<Alert>>>,
    capacity: usize,
}

impl AlertQueue {
    /// An empty queue holding at most `capacity` alerts (at least 1).
    pub fn new(capacity: usize) -> Self {
        let capacity = capacity.max(1);
        AlertQueue { items: Mutex::new(VecDeque::with_capacity(capacity.min(1024))), capacity }
    }

    /// Appends `alerts`, dropping the oldest as needed; returns how many were dropped.
    pub fn push(&self, alerts: &[Arc<Alert>]) -> usize {
        let mut dropped = 0;
        let newest = if alerts.len() > self.capacity {
            dropped += alerts.len() - self.capacity;
            &alerts[alerts.len() - self.capacity..]
        } else {
            alerts
        };
        let mut q = self.items.lock();
        let over = (q.len() + newest.len()).saturating_sub(self.capacity);
        q.drain(..over);
        dropped += over;
        q.extend(newest.iter().cloned());
        dropped
    }

    /// Removes and returns up to `max` of the oldest alerts.
    pub fn pop_batch(&self, max: usize) -> Vec<Arc<Alert>> {
        let mut q = self.items.lock();
        let n = q.len().min(max);
        q.drain(..n).collect()
    }

    /// Alerts waiting.
    pub fn len(&self) -> usize {
        self.items.lock().len()
    }

    /// Whether nothing is waiting.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The capacity.
    pub fn capacity(&self) -> usize {
        self.capacity
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::labels;

    fn alerts(range: std::ops::Range<usize>) -> Vec<Arc<Alert>> {
        range
            .map(|i| {
                Arc::new(Alert {
                    labels: labels!("alertname" => format!("a{i}")),
                    annotations: Default::default(),
                    starts_at_ms: None,
                    ends_at_ms: None,
                    generator_url: String::new(),
                })
            })
            .collect()
    }

    fn names(v: &[Arc<Alert>]) -> Vec<String> {
        v.iter().map(|a| a.labels.get("alertname").unwrap_or("").to_string()).collect()
    }

    #[test]
    fn drops_oldest_and_counts() {
        let q = AlertQueue::new(3);
        assert_eq!(q.push(&alerts(0..2)), 0);
        assert_eq!(q.push(&alerts(2..4)), 1);
        assert_eq!(names(&q.pop_batch(10)), ["a1", "a2", "a3"]);
        // A batch larger than the capacity keeps its newest alerts.
        assert_eq!(q.push(&alerts(0..5)), 2);
        assert_eq!(names(&q.pop_batch(2)), ["a2", "a3"]);
        assert_eq!(q.len(), 1);
    }
}
