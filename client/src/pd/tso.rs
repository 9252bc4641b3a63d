//! Timestamps over one long-lived `Tso` stream.
//!
//! Requests are serialized over the stream (one in flight per client): PD
//! answers a batch of `count` timestamps in one round trip, so a caller
//! that needs many asks for many at once. The stream is reopened on the
//! current leader after any failure; PD ends it itself after an error.

use flotilla_proto::pdpb::{self, TsoRequest, TsoResponse};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_stream::wrappers::ReceiverStream;

use super::leader::Conn;
use super::retry::{hint, judge, Retrier, Step};
use super::{PdClient, PdError};

/// Requests buffered toward PD on the stream; one is in flight at a time,
/// so one slot is enough.
const TSO_STREAM_CAPACITY: usize = 1;

/// A PD timestamp: milliseconds of physical time and a logical counter
/// below 2^18. Strictly increasing across PD leader changes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp {
    /// Physical part, in milliseconds since the Unix epoch.
    pub physical_ms: u64,
    /// Logical part, `< 2^18`.
    pub logical: u64,
}

impl Timestamp {
    /// Bits of the logical part in the composed form.
    pub const LOGICAL_BITS: u32 = 18;

    /// The composed form `physical_ms << 18 | logical`, ordered like the
    /// timestamps themselves.
    pub fn to_u64(self) -> u64 {
        (self.physical_ms << Self::LOGICAL_BITS) | self.logical
    }
}

/// The open stream, if any. The mutex serializes requests over it.
#[derive(Default)]
pub(crate) struct TsoSlot(tokio::sync::Mutex<Option<TsoStream>>);

pub(crate) struct TsoStream {
    conn: Conn,
    tx: mpsc::Sender<TsoRequest>,
    rx: tonic::Streaming<TsoResponse>,
}

impl PdClient {
    /// `count` consecutive timestamps (1..=2^18; 0 means 1): returns the
    /// first; the others share its physical part, logical `+1, +2, ...`.
    pub async fn get_tso(&self, count: u32) -> Result<Timestamp, PdError> {
        let mut retrier = Retrier::new(&self.leader.config);
        // Waiting for another caller's request counts against our deadline.
        let Ok(mut slot) = tokio::time::timeout_at(retrier.deadline, self.tso.0.lock()).await
        else {
            return Err(retrier.expired());
        };
        loop {
            let step = self.tso_attempt(&mut slot, count, retrier.deadline).await;
            if let Some(out) = retrier.after("Tso", step).await {
                return out;
            }
        }
    }

    async fn tso_attempt(
        &self,
        slot: &mut Option<TsoStream>,
        count: u32,
        deadline: Instant,
    ) -> Step<Timestamp> {
        let conn = match self.leader.current(deadline).await {
            Ok(c) => c,
            Err(e) => return Step::Retry(e),
        };
        // A stream on a member we no longer follow is stale.
        if slot
            .as_ref()
            .is_some_and(|s| s.conn.generation != conn.generation)
        {
            *slot = None;
        }
        let until = (Instant::now() + self.leader.config.rpc_timeout).min(deadline);
        if slot.is_none() {
            match open(&conn, until).await {
                Ok(s) => *slot = Some(s),
                Err(e) => return judge(&self.leader, &conn, e, None, deadline).await,
            }
        }
        let Some(stream) = slot.as_mut() else {
            unreachable!("opened above")
        };
        let req = TsoRequest {
            header: self.header(),
            count,
        };
        let result = exchange(stream, req, until).await;
        let err = match result {
            Ok(resp) => match PdError::from_header(resp.header.as_ref()) {
                None => return Step::Done(decode(&resp, count)),
                Some(e) => {
                    // PD ends the stream after an error answer.
                    *slot = None;
                    return judge(&self.leader, &conn, e, hint(resp.header.as_ref()), deadline)
                        .await;
                }
            },
            Err(e) => e,
        };
        *slot = None;
        judge(&self.leader, &conn, err, None, deadline).await
    }
}

async fn open(conn: &Conn, until: Instant) -> Result<TsoStream, PdError> {
    let (tx, rx) = mpsc::channel(TSO_STREAM_CAPACITY);
    let mut grpc = conn.grpc.clone();
    match tokio::time::timeout_at(until, grpc.tso(ReceiverStream::new(rx))).await {
        Ok(Ok(resp)) => Ok(TsoStream {
            conn: conn.clone(),
            tx,
            rx: resp.into_inner(),
        }),
        Ok(Err(status)) => Err(PdError::from_status(&status)),
        Err(_) => Err(PdError::Transport(format!(
            "opening a Tso stream on {} timed out",
            conn.url
        ))),
    }
}

/// Sends one request and waits for its answer.
async fn exchange(
    stream: &mut TsoStream,
    req: TsoRequest,
    until: Instant,
) -> Result<TsoResponse, PdError> {
    let url = &stream.conn.url;
    let broken = || PdError::Transport(format!("Tso stream on {url} closed"));
    match tokio::time::timeout_at(until, stream.tx.send(req)).await {
        Ok(Ok(())) => {}
        Ok(Err(_)) => return Err(broken()),
        Err(_) => return Err(PdError::Transport(format!("Tso on {url} timed out"))),
    }
    match tokio::time::timeout_at(until, stream.rx.message()).await {
        Ok(Ok(Some(resp))) => Ok(resp),
        Ok(Ok(None)) => Err(broken()),
        Ok(Err(status)) => Err(PdError::from_status(&status)),
        Err(_) => Err(PdError::Transport(format!("Tso on {url} timed out"))),
    }
}

fn decode(resp: &TsoResponse, count: u32) -> Result<Timestamp, PdError> {
    let bad = || PdError::Unknown(format!("bad Tso answer to count {count}: {resp:?}"));
    let pdpb::Timestamp { physical, logical } = resp.timestamp.ok_or_else(bad)?;
    let (Ok(physical_ms), Ok(logical)) = (u64::try_from(physical), u64::try_from(logical)) else {
        return Err(bad());
    };
    if resp.count < count.max(1) || logical + u64::from(resp.count) > 1 << Timestamp::LOGICAL_BITS {
        return Err(bad());
    }
    Ok(Timestamp {
        physical_ms,
        logical,
    })
}
