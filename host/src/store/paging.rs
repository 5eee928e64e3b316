//! Pages of a trigger's rows, newest first, bounded by bytes as well as by
//! count: the sizes are read first (no large column leaves SQLite), then
//! only the rows that fit.

use sqlx::any::AnyRow;

use super::{Store, StoreError};

/// How to read one kind of row a page at a time.
pub(super) struct PageQuery {
    /// `seq` and the row's size in bytes, newest first; binds the trigger
    /// id, the `seq` to stay below and the row limit.
    pub(super) sizes: &'static str,
    /// The rows themselves, newest first; binds the trigger id, the newest
    /// and the oldest `seq` of the page (both included).
    pub(super) rows: &'static str,
}

impl Store {
    /// Rows of a trigger older than `before_seq`: at most `limit` and, past
    /// the first, no more than `max_bytes`. The flag says whether older rows
    /// may follow.
    pub(super) async fn page<T>(
        &self,
        query: PageQuery,
        trigger_id: &str,
        limit: i64,
        before_seq: Option<i64>,
        max_bytes: usize,
    ) -> Result<(Vec<T>, bool), StoreError>
    where
        T: for<'r> sqlx::FromRow<'r, AnyRow> + Send + Unpin,
    {
        let sizes: Vec<(i64, i64)> = sqlx::query_as(query.sizes)
            .bind(trigger_id)
            .bind(before_seq.unwrap_or(i64::MAX))
            .bind(limit)
            .fetch_all(self.pool())
            .await?;
        let Some(oldest) = last_within(&sizes, max_bytes) else { return Ok((Vec::new(), false)) };
        // Bounded by the newest row sized too: rows committed since are not
        // in this page, so it cannot grow past what was measured.
        let newest = sizes.first().map_or(oldest, |(seq, _)| *seq);
        let rows = sqlx::query_as(query.rows).bind(trigger_id).bind(newest).bind(oldest).fetch_all(self.pool()).await?;
        Ok((rows, more_after(&sizes, limit, oldest)))
    }
}

/// Whether rows older than `oldest` may exist: the size query was full, or
/// the byte budget stopped before its end.
fn more_after(sizes: &[(i64, i64)], limit: i64, oldest: i64) -> bool {
    i64::try_from(sizes.len()).unwrap_or(i64::MAX) >= limit || sizes.last().is_some_and(|(seq, _)| *seq != oldest)
}

/// The oldest `seq` of the newest-first `(seq, bytes)` rows whose running
/// total stays within `max_bytes`; the first row always fits.
fn last_within(sizes: &[(i64, i64)], max_bytes: usize) -> Option<i64> {
    let mut total = 0usize;
    let mut oldest = None;
    for (seq, bytes) in sizes {
        total = total.saturating_add(usize::try_from(*bytes).unwrap_or(usize::MAX));
        if oldest.is_some() && total > max_bytes {
            break;
        }
        oldest = Some(*seq);
    }
    oldest
}

#[cfg(test)]
mod tests {
    use super::{last_within, more_after};

    #[test]
    fn a_page_stops_at_its_byte_budget_but_always_holds_one_row() {
        let sizes = [(9, 400), (8, 400), (7, 400), (6, 10)];
        assert_eq!(last_within(&sizes, 1000), Some(8));
        assert_eq!(last_within(&sizes, 10), Some(9), "the first row fits whatever its size");
        assert_eq!(last_within(&sizes, 10_000), Some(6));
        assert_eq!(last_within(&[], 10), None);
        assert!(more_after(&sizes, 500, 8), "cut by bytes");
        assert!(more_after(&sizes, 4, 6), "a full page");
        assert!(!more_after(&sizes, 500, 6));
    }
}
