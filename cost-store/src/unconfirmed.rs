//! A batch sent to a shared store whose answer was lost (the connection cut after the request
//! left): it may have been applied or not. The store keeps it as [`Unconfirmed`], asks before
//! the next batch whether it landed, and takes what it held out of the retry ([`without`]), so
//! no call is written twice and no settlement applied twice. A JSON-lines file keeps a batch
//! only partly written the same way, with the bytes still to write.

/// A batch whose answer was lost: what identifies it at the store (`mark`: the transaction's
/// id in PostgreSQL, the batch's number in Redis; in a JSON-lines file, the bytes of a batch
/// partly written still to write) and what it held.
pub(crate) struct Unconfirmed<T, Mark> {
    pub(crate) mark: Mark,
    pub(crate) items: Vec<T>,
}

/// `items` without one of each of `sent` (the items of a batch already applied, which a retry
/// brings again, usually first).
pub(crate) fn without<T: PartialEq + Clone>(items: &[T], sent: &[T]) -> Vec<T> {
    if let Some(rest) = items.strip_prefix(sent) {
        return rest.to_vec();
    }
    let mut left: Vec<&T> = sent.iter().collect();
    items
        .iter()
        .filter(|item| match left.iter().position(|sent| sent == item) {
            Some(at) => {
                left.swap_remove(at);
                false
            }
            None => true,
        })
        .cloned()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_retried_batch_loses_one_of_each_item_already_applied_wherever_it_stands() {
        // Retried whole, with items queued since after it.
        assert_eq!(without(&[1, 2, 3, 4], &[1, 2]), [3, 4]);
        // Applied one by one after a refusal: some of it, in another order.
        assert_eq!(without(&[4, 2, 1], &[1, 2, 3]), [4]);
        // Two equal items, one of them applied.
        assert_eq!(without(&[5, 5, 6], &[5]), [5, 6]);
        assert_eq!(without(&[5, 6, 5], &[6, 5]), [5]);
        assert!(without::<u8>(&[], &[1]).is_empty());
    }
}
