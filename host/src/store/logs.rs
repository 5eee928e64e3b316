//! Connector logs: what each call wrote, a bounded ring per trigger.

use serde::Serialize;

use super::paging::PageQuery;
use super::{Store, StoreError};

/// A call's log, to keep.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewLog {
    /// The trigger (or source) called.
    pub trigger_id: String,
    /// Unix ms the call ended.
    pub at_ms: i64,
    /// `deliver` or `poll`.
    pub export: &'static str,
    /// `accepted`, `rejected`, `responded`, `polled`, or a failure's code.
    pub outcome: String,
    /// The version that ran.
    pub plugin_version: String,
    /// The node that ran it.
    pub node: String,
    /// What it wrote, cut at the per-call cap.
    pub text: String,
    /// Bytes past the cap.
    pub dropped_bytes: i64,
    /// This trigger's calls just before whose logs were not kept.
    pub skipped_calls: i64,
}

/// A kept log, as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow, Serialize)]
pub struct LogRow {
    /// Order of writing; the cursor of `?after=`.
    pub seq: i64,
    /// Unix ms the call ended.
    pub at_ms: i64,
    /// `deliver` or `poll`.
    pub export: String,
    /// `accepted`, `rejected`, `responded`, `polled`, or a failure's code.
    pub outcome: String,
    /// The version that ran.
    pub plugin_version: String,
    /// The node that ran it.
    pub node: String,
    /// What it wrote.
    pub text: String,
    /// Bytes past the per-call cap.
    pub dropped_bytes: i64,
    /// Calls just before whose logs were not kept (over the rate).
    pub skipped_calls: i64,
}

impl Store {
    /// Appends logs in one transaction, then trims each trigger written to
    /// its newest `keep`. Diagnostics, not data: written through the
    /// relaxed pool, so a crash may lose the last ones.
    pub async fn append_logs(&self, logs: &[NewLog], keep: i64) -> Result<(), StoreError> {
        if logs.is_empty() {
            return Ok(());
        }
        let _turn = self.write_turn().await;
        let mut tx = self.begin_write(&self.relaxed).await?;
        let sql = format!(
            "INSERT INTO call_logs (trigger_id, at_ms, export, outcome, plugin_version, node, text, dropped_bytes, skipped_calls)
             SELECT column1, column2, column3, column4, column5, column6, column7, column8, column9 FROM ({}) AS v",
            super::values_list(logs.len(), 9)
        );
        let mut insert = sqlx::query(sqlx::AssertSqlSafe(sql));
        for log in logs {
            insert = insert
                .bind(&log.trigger_id)
                .bind(log.at_ms)
                .bind(log.export)
                .bind(&log.outcome)
                .bind(&log.plugin_version)
                .bind(&log.node)
                .bind(&log.text)
                .bind(log.dropped_bytes)
                .bind(log.skipped_calls);
        }
        insert.execute(&mut *tx).await?;
        let mut written: Vec<&str> = logs.iter().map(|log| log.trigger_id.as_str()).collect();
        written.sort_unstable();
        written.dedup();
        for trigger_id in written {
            sqlx::query(
                "DELETE FROM call_logs WHERE trigger_id = $1 AND seq <=
                    (SELECT seq FROM call_logs WHERE trigger_id = $2 ORDER BY seq DESC LIMIT 1 OFFSET $3)",
            )
            .bind(trigger_id)
            .bind(trigger_id)
            .bind(keep)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// A trigger's logs, newest first, older than `before_seq`: at most
    /// `limit` and, past the first, no more than `max_bytes` of text. The
    /// flag says whether older logs may follow.
    pub async fn list_logs(
        &self,
        trigger_id: &str,
        limit: i64,
        before_seq: Option<i64>,
        max_bytes: usize,
    ) -> Result<(Vec<LogRow>, bool), StoreError> {
        let query = PageQuery {
            sizes: "SELECT seq, octet_length(text) FROM call_logs WHERE trigger_id = $1 AND seq < $2 ORDER BY seq DESC LIMIT $3",
            rows: "SELECT seq, at_ms, export, outcome, plugin_version, node, text, dropped_bytes, skipped_calls FROM call_logs
                   WHERE trigger_id = $1 AND seq <= $2 AND seq >= $3 ORDER BY seq DESC",
        };
        self.page(query, trigger_id, limit, before_seq, max_bytes).await
    }

    /// A trigger's logs written after `after_seq`, oldest first (for
    /// following them): at most `limit`.
    pub async fn logs_after(&self, trigger_id: &str, after_seq: i64, limit: i64) -> Result<Vec<LogRow>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT seq, at_ms, export, outcome, plugin_version, node, text, dropped_bytes, skipped_calls FROM call_logs
             WHERE trigger_id = $1 AND seq > $2 ORDER BY seq LIMIT $3",
        )
        .bind(trigger_id)
        .bind(after_seq)
        .bind(limit)
        .fetch_all(self.pool())
        .await?)
    }
}
