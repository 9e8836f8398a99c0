//! Redis over RESP (`redis` crate, tokio).
//!
//! | op | Redis commands |
//! | --- | --- |
//! | `Put` | `SET` |
//! | `Update` | `SET` of the position, then `INCRBY` of the score: two round trips, each awaited (no pipelining) |
//! | `Checkpoint` | `MULTI` / `DEL p{n}/pos p{n}/score` / `EXEC` (the player's keys are known, so no `SCAN`) |
//! | `LateRead` | `GET` of the position: Redis has no event-time reads, it reads the latest value |
//! | batch of N | one `MULTI` … `EXEC` holding every op's commands in order (`SET`+`INCRBY` per update, `DEL` per checkpoint, `GET` per late read): one round trip, applied atomically |
//!
//! Each worker opens its own TCP connection and has one request in flight on it. (The crate's async
//! connection type is the multiplexed one; with a single user that awaits every reply it behaves as a
//! plain connection.) Its built-in 500 ms response timeout is off: the runner owns request deadlines.

use kvs_raft::bench::{position_key, score_key, Driver, ErrorLabel, Op};
use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, Client, Pipeline};

/// The Redis driver for one server.
#[derive(Debug)]
pub struct RedisDriver {
    client: Client,
}

impl RedisDriver {
    /// A driver for `url` (`redis://127.0.0.1:port/`).
    pub fn new(url: &str) -> Result<RedisDriver, redis::RedisError> {
        Ok(RedisDriver {
            client: Client::open(url)?,
        })
    }
}

impl Driver for RedisDriver {
    type Conn = MultiplexedConnection;

    async fn connect(&self, _worker: usize) -> Result<MultiplexedConnection, ErrorLabel> {
        let config = AsyncConnectionConfig::new().set_response_timeout(None);
        self.client
            .get_multiplexed_async_connection_with_config(&config)
            .await
            .map_err(|e| label(&e))
    }

    async fn execute(
        &self,
        conn: &mut MultiplexedConnection,
        ops: &[Op],
    ) -> Result<(), ErrorLabel> {
        match ops {
            [Op::Put { key, value }] => redis::cmd("SET")
                .arg(key)
                .arg(value)
                .query_async::<()>(conn)
                .await
                .map_err(|e| label(&e)),
            [Op::Update {
                player,
                position,
                score_delta,
            }] => {
                redis::cmd("SET")
                    .arg(position_key(*player))
                    .arg(position)
                    .query_async::<()>(conn)
                    .await
                    .map_err(|e| label(&e))?;
                redis::cmd("INCRBY")
                    .arg(score_key(*player))
                    .arg(*score_delta)
                    .query_async::<i64>(conn)
                    .await
                    .map_err(|e| label(&e))?;
                Ok(())
            }
            [Op::LateRead { player, .. }] => redis::cmd("GET")
                .arg(position_key(*player))
                .query_async::<Option<Vec<u8>>>(conn)
                .await
                .map(drop)
                .map_err(|e| label(&e)),
            // A checkpoint alone is a transaction of one op; so is any batch.
            _ => transaction(ops)
                .query_async::<redis::Value>(conn)
                .await
                .map(drop)
                .map_err(|e| label(&e)),
        }
    }
}

/// `MULTI`, every op's commands in order, `EXEC`.
fn transaction(ops: &[Op]) -> Pipeline {
    let mut pipe = redis::pipe();
    pipe.atomic();
    for op in ops {
        match op {
            Op::Put { key, value } => {
                pipe.cmd("SET").arg(key).arg(value).ignore();
            }
            Op::Update {
                player,
                position,
                score_delta,
            } => {
                pipe.cmd("SET")
                    .arg(position_key(*player))
                    .arg(position)
                    .ignore();
                pipe.cmd("INCRBY")
                    .arg(score_key(*player))
                    .arg(*score_delta)
                    .ignore();
            }
            Op::Checkpoint { player, .. } => {
                pipe.cmd("DEL")
                    .arg(position_key(*player))
                    .arg(score_key(*player))
                    .ignore();
            }
            Op::LateRead { player, .. } => {
                pipe.cmd("GET").arg(position_key(*player)).ignore();
            }
        }
    }
    pipe
}

/// The report's label of a Redis error: `io` (connection lost or refused), `timeout`, or
/// `redis-<code>` for an error reply (`redis-err`, `redis-wrongtype`, `redis-oom`, ...).
fn label(e: &redis::RedisError) -> ErrorLabel {
    if e.is_timeout() {
        "timeout".into()
    } else if e.is_io_error() || e.is_connection_dropped() {
        "io".into()
    } else if let Some(code) = e.code() {
        format!("redis-{}", code.to_ascii_lowercase())
    } else {
        "redis-other".into()
    }
}
