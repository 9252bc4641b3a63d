//! Property tests of `raftcore::codec`: random values round-trip, and no
//! input (random, truncated, or a valid encoding with one byte changed)
//! panics. Whatever does decode must re-encode to exactly the input, since
//! the format gives each value one encoding.

use bytes::Bytes;
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::select;
use raftcore::codec::{self, DecodeError};
use raftcore::{
    ConfState, Entry, EntryType, HardState, Message, MessageType, Snapshot, SnapshotMetadata,
};

/// Mostly zero (most fields of a real message are) and small values
/// (one-byte varints, realistic IDs); any `u64` otherwise so ten-byte
/// varints are exercised too.
fn int() -> impl Strategy<Value = u64> {
    prop_oneof![2 => Just(0), 3 => 1..300u64, 1 => any::<u64>()]
}

fn payload() -> impl Strategy<Value = Bytes> {
    vec(any::<u8>(), 0..24).prop_map(Bytes::from)
}

fn entry() -> impl Strategy<Value = Entry> {
    let entry_type = select(vec![EntryType::Normal, EntryType::ConfChange]);
    (int(), int(), entry_type, payload()).prop_map(|(term, index, entry_type, data)| Entry {
        term,
        index,
        entry_type,
        data,
    })
}

fn hard_state() -> impl Strategy<Value = HardState> {
    (int(), int(), int()).prop_map(|(term, vote, commit)| HardState { term, vote, commit })
}

fn conf_state() -> impl Strategy<Value = ConfState> {
    let ids = || vec(int(), 0..5);
    (ids(), ids(), ids(), ids(), any::<bool>()).prop_map(
        |(voters, learners, voters_outgoing, learners_next, auto_leave)| ConfState {
            voters,
            learners,
            voters_outgoing,
            learners_next,
            auto_leave,
        },
    )
}

fn snapshot_metadata() -> impl Strategy<Value = SnapshotMetadata> {
    (conf_state(), int(), int()).prop_map(|(conf_state, index, term)| SnapshotMetadata {
        conf_state,
        index,
        term,
    })
}

fn snapshot() -> impl Strategy<Value = Snapshot> {
    (payload(), snapshot_metadata()).prop_map(|(data, metadata)| Snapshot { data, metadata })
}

fn message() -> impl Strategy<Value = Message> {
    let header = (
        select(MessageType::ALL.to_vec()),
        int(),
        int(),
        int(),
        int(),
        int(),
        int(),
        int(),
        int(),
    );
    let body = (
        vec(entry(), 0..4),
        proptest::option::of(snapshot().prop_map(Box::new)),
        any::<[bool; 3]>(),
        payload(),
    );
    (header, body).prop_map(
        |(
            (msg_type, to, from, term, log_term, index, commit, reject_hint, stamp),
            (entries, snapshot, [reject, leader_transfer, hibernate], context),
        )| Message {
            msg_type,
            to,
            from,
            term,
            log_term,
            index,
            entries,
            commit,
            snapshot,
            reject,
            reject_hint,
            stamp,
            leader_transfer,
            hibernate,
            context,
        },
    )
}

fn encoded<T>(encode: fn(&T, &mut Vec<u8>), v: &T) -> Bytes {
    let mut out = Vec::new();
    encode(v, &mut out);
    Bytes::from(out)
}

/// Decodes `buf`; if it decodes, checks it was the value's one encoding.
fn decode_canonical<T: std::fmt::Debug>(
    decode: fn(&Bytes) -> Result<T, DecodeError>,
    encode: fn(&T, &mut Vec<u8>),
    buf: &Bytes,
) -> Result<T, DecodeError> {
    let decoded = decode(buf)?;
    assert_eq!(
        encoded(encode, &decoded),
        buf,
        "{decoded:?} decoded from bytes that are not its encoding"
    );
    Ok(decoded)
}

/// Runs every decoder on `buf`: none may panic, and each success must be
/// canonical.
fn decode_with_every_decoder(buf: &Bytes) {
    let _ = decode_canonical(codec::decode_message, codec::encode_message, buf);
    let _ = decode_canonical(codec::decode_entry, codec::encode_entry, buf);
    let _ = decode_canonical(codec::decode_hard_state, codec::encode_hard_state, buf);
    let _ = decode_canonical(codec::decode_conf_state, codec::encode_conf_state, buf);
    let _ = decode_canonical(
        codec::decode_snapshot_metadata,
        codec::encode_snapshot_metadata,
        buf,
    );
    let _ = decode_canonical(codec::decode_snapshot, codec::encode_snapshot, buf);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn messages_round_trip(m in message()) {
        let buf = encoded(codec::encode_message, &m);
        prop_assert_eq!(codec::decode_message(&buf), Ok(m));
    }

    #[test]
    fn state_round_trips(
        e in entry(),
        hs in hard_state(),
        cs in conf_state(),
        s in snapshot(),
    ) {
        let buf = encoded(codec::encode_entry, &e);
        prop_assert_eq!(codec::decode_entry(&buf), Ok(e));
        let buf = encoded(codec::encode_hard_state, &hs);
        prop_assert_eq!(codec::decode_hard_state(&buf), Ok(hs));
        let buf = encoded(codec::encode_conf_state, &cs);
        prop_assert_eq!(codec::decode_conf_state(&buf), Ok(cs));
        let buf = encoded(codec::encode_snapshot_metadata, &s.metadata);
        prop_assert_eq!(codec::decode_snapshot_metadata(&buf), Ok(s.metadata.clone()));
        let buf = encoded(codec::encode_snapshot, &s);
        prop_assert_eq!(codec::decode_snapshot(&buf), Ok(s));
    }

    /// Every strict prefix of a valid encoding is an error: each field says
    /// where it ends, so a cut one can never look complete.
    #[test]
    fn truncated_messages_are_errors(m in message()) {
        let buf = encoded(codec::encode_message, &m);
        for cut in 0..buf.len() {
            let prefix = buf.slice(..cut);
            prop_assert!(codec::decode_message(&prefix).is_err(), "prefix {} decoded", cut);
            decode_with_every_decoder(&prefix);
        }
    }

    #[test]
    fn random_bytes_never_panic(
        versioned in any::<bool>(),
        bytes in vec(any::<u8>(), 0..64),
    ) {
        // Most random inputs fail on the version byte; start half of them
        // with the right one so the decoders get further in.
        let buf: Vec<u8> = versioned.then_some(1).into_iter().chain(bytes).collect();
        decode_with_every_decoder(&Bytes::from(buf));
    }

    /// A valid encoding with one byte changed, inserted or removed: the
    /// inputs most likely to slip past a check, such as a zero varint
    /// padded to `80 00`.
    #[test]
    fn corrupted_messages_never_panic(
        m in message(),
        edit in 0..3u8,
        at in any::<prop::sample::Index>(),
        byte in prop_oneof![Just(0x00), Just(0x80), Just(0xff), any::<u8>()],
    ) {
        let mut buf = encoded(codec::encode_message, &m).to_vec();
        match edit {
            0 => {
                let i = at.index(buf.len());
                buf[i] = buf[i].wrapping_add(byte.max(1));
            }
            1 => buf.insert(at.index(buf.len() + 1), byte),
            _ => {
                buf.remove(at.index(buf.len()));
            }
        }
        decode_with_every_decoder(&Bytes::from(buf));
    }
}
