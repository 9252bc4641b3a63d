use bytes::Bytes;

use super::*;
use crate::types::{ConfChange, ConfChangeSingle, ConfChangeType, EntryType, MessageType};

fn encoded(encode: impl FnOnce(&mut Vec<u8>)) -> Bytes {
    let mut out = Vec::new();
    encode(&mut out);
    Bytes::from(out)
}

fn joint_conf_state() -> ConfState {
    ConfState {
        voters: vec![1, 2, 3],
        learners: vec![4],
        voters_outgoing: vec![1, 2, 5],
        learners_next: vec![5],
        auto_leave: true,
    }
}

fn snapshot(data: &'static [u8]) -> Snapshot {
    Snapshot {
        data: Bytes::from_static(data),
        metadata: SnapshotMetadata {
            conf_state: joint_conf_state(),
            index: 1 << 40,
            term: 7,
        },
    }
}

fn entries() -> Vec<Entry> {
    let cc = ConfChange::new([ConfChangeSingle::new(ConfChangeType::AddNode, 9)]);
    vec![
        Entry {
            term: 5,
            index: 100,
            entry_type: EntryType::Normal,
            data: Bytes::from_static(b"put k=v"),
        },
        Entry {
            term: 5,
            index: 101,
            entry_type: EntryType::ConfChange,
            data: cc.encode(),
        },
        Entry {
            term: u64::MAX,
            index: u64::MAX,
            ..Entry::default()
        },
    ]
}

/// A message of type `t` with every field away from its default.
fn full_message(t: MessageType) -> Message {
    Message {
        msg_type: t,
        to: 2,
        from: 1,
        term: 9,
        log_term: 8,
        index: 300,
        entries: entries(),
        commit: 299,
        snapshot: Some(Box::new(snapshot(b"image"))),
        reject: true,
        reject_hint: 250,
        stamp: u64::MAX,
        leader_transfer: true,
        hibernate: true,
        context: Bytes::from_static(b"read-ctx"),
    }
}

#[test]
fn every_message_type_round_trips_with_all_fields() {
    for t in MessageType::ALL {
        let m = full_message(t);
        let buf = encoded(|out| encode_message(&m, out));
        assert_eq!(decode_message(&buf), Ok(m), "{t:?}");
    }
}

fn message_of(t: MessageType) -> Message {
    Message {
        msg_type: t,
        ..Message::default()
    }
}

#[test]
fn default_message_round_trips() {
    let m = Message::default();
    let buf = encoded(|out| encode_message(&m, out));
    assert_eq!(decode_message(&buf), Ok(m));
}

#[test]
fn message_type_bytes_are_distinct_and_unknown_ones_rejected() {
    let mut seen = Vec::new();
    for t in MessageType::ALL {
        let buf = encoded(|out| encode_message(&message_of(t), out));
        seen.push(buf[1]);
    }
    assert_eq!(seen, (0..13).collect::<Vec<u8>>());
    let mut buf = encoded(|out| encode_message(&Message::default(), out)).to_vec();
    for b in 13..=u8::MAX {
        buf[1] = b;
        let err = decode_message(&Bytes::from(buf.clone())).unwrap_err();
        assert_eq!(err.to_string(), "malformed message: unknown message type");
    }
}

#[test]
fn snapshots_round_trip_empty_and_non_empty() {
    for s in [
        Snapshot::default(),
        snapshot(b""),
        snapshot(b"state machine"),
    ] {
        let buf = encoded(|out| encode_snapshot(&s, out));
        assert_eq!(decode_snapshot(&buf), Ok(s.clone()));
        let buf = encoded(|out| encode_snapshot_metadata(&s.metadata, out));
        assert_eq!(decode_snapshot_metadata(&buf), Ok(s.metadata.clone()));
        let m = Message {
            msg_type: MessageType::Snapshot,
            snapshot: Some(Box::new(s)),
            ..Message::default()
        };
        let buf = encoded(|out| encode_message(&m, out));
        assert_eq!(decode_message(&buf), Ok(m));
    }
}

#[test]
fn entries_of_every_type_round_trip() {
    let all = entries();
    for t in [EntryType::Normal, EntryType::ConfChange] {
        assert!(all.iter().any(|e| e.entry_type == t), "{t:?} untested");
    }
    for e in all {
        let buf = encoded(|out| encode_entry(&e, out));
        assert_eq!(decode_entry(&buf), Ok(e));
    }
}

#[test]
fn hard_and_conf_state_round_trip() {
    for hs in [
        HardState::default(),
        HardState {
            term: u64::MAX,
            vote: 3,
            commit: 1 << 33,
        },
    ] {
        let buf = encoded(|out| encode_hard_state(&hs, out));
        assert_eq!(decode_hard_state(&buf), Ok(hs));
    }
    for cs in [
        ConfState::default(),
        ConfState::with_voters([1]),
        joint_conf_state(),
    ] {
        let buf = encoded(|out| encode_conf_state(&cs, out));
        assert_eq!(decode_conf_state(&buf), Ok(cs));
    }
}

/// Stored records outlive the binary that wrote them: these bytes must
/// never change meaning without a new format version.
#[test]
fn format_is_pinned() {
    let hs = HardState {
        term: 1,
        vote: 2,
        commit: 300,
    };
    assert_eq!(
        encoded(|out| encode_hard_state(&hs, out)),
        &[1, 1, 2, 0xac, 0x02][..]
    );
    let m = Message {
        msg_type: MessageType::Heartbeat,
        to: 2,
        from: 1,
        term: 3,
        commit: 4,
        stamp: 5,
        hibernate: true,
        entries: vec![Entry {
            term: 3,
            index: 4,
            entry_type: EntryType::ConfChange,
            data: Bytes::from_static(b"x"),
        }],
        context: Bytes::from_static(b"c"),
        ..Message::default()
    };
    #[rustfmt::skip]
    let want: &[u8] = &[
        1,                      // format version
        6,                      // Heartbeat
        2, 1, 3, 0, 0, 4, 0, 5, // to from term log_term index commit reject_hint stamp
        0b0100,                 // flags: hibernate
        1, 3, 4, 1, 1, b'x',    // one entry: term index ConfChange data
        1, b'c',                // context
    ];
    assert_eq!(encoded(|out| encode_message(&m, out)), want);
}

#[test]
fn encoders_append_to_the_buffer() {
    let mut out = b"prefix".to_vec();
    encode_hard_state(&HardState::default(), &mut out);
    assert_eq!(out, b"prefix\x01\x00\x00\x00");
}

fn points_into(buf: &Bytes, p: *const u8) -> bool {
    buf.as_ptr_range().contains(&p)
}

#[test]
fn decoded_payloads_share_the_input_buffer() {
    let m = full_message(MessageType::Append);
    let buf = encoded(|out| encode_message(&m, out));
    let decoded = decode_message(&buf).unwrap();
    // An empty slice need not point anywhere in particular.
    for e in decoded.entries.iter().filter(|e| !e.data.is_empty()) {
        assert!(points_into(&buf, e.data.as_ptr()), "entry {e} data copied");
    }
    let snap = decoded.snapshot.as_ref().unwrap();
    assert!(
        points_into(&buf, snap.data.as_ptr()),
        "snapshot data copied"
    );
    assert!(
        points_into(&buf, decoded.context.as_ptr()),
        "context copied"
    );

    let e = &m.entries[0];
    let buf = encoded(|out| encode_entry(e, out));
    let decoded = decode_entry(&buf).unwrap();
    assert_eq!(
        decoded.data.as_ptr(),
        buf[buf.len() - e.data.len()..].as_ptr()
    );
}

fn assert_rejected(buf: &[u8], reason: &str) {
    let err = decode_message(&Bytes::copy_from_slice(buf)).expect_err("decoded");
    assert!(err.to_string().contains(reason), "{err} lacks {reason:?}");
}

/// A default Heartbeat up to and including its flags byte.
const HEADER: [u8; 11] = [1, 6, 0, 0, 0, 0, 0, 0, 0, 0, 0];

#[test]
fn malformed_messages_are_rejected_with_a_reason() {
    let with = |tail: &[u8]| [&HEADER[..], tail].concat();
    assert_eq!(
        decode_message(&Bytes::from(with(&[0, 0]))),
        Ok(message_of(MessageType::Heartbeat))
    );
    assert_rejected(&[], "message: input ends early");
    assert_rejected(&[2], "unknown format version");
    assert_rejected(&with(&[0, 0, 0]), "trailing bytes");
    assert_rejected(&with(&[0, 1]), "context length exceeds input");
    assert_rejected(&with(&[0, 5, 1, 2, 3, 4]), "context length exceeds input");
    assert_rejected(&with(&[2, 1, 1, 0, 0]), "more entries than bytes");
    assert_rejected(&with(&[1, 1, 1, 2, 9, 0]), "unknown entry type");
    assert_rejected(
        &with(&[1, 1, 1, 0, 9, 0]),
        "entry data length exceeds input",
    );
    // A count near u64::MAX must fail before anything is reserved.
    let huge = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01];
    assert_rejected(
        &with(&[&huge[..], &[0; 8]].concat()),
        "more entries than bytes",
    );
    let mut flags = HEADER;
    flags[10] = 0b1_0000;
    assert_rejected(&[&flags[..], &[0, 0]].concat(), "unknown message flags");
    let mut overflow = HEADER.to_vec();
    overflow.splice(2..3, [0xff; 9].into_iter().chain([0x02]));
    assert_rejected(&overflow, "varint overflows u64");
    let mut too_long = HEADER.to_vec();
    too_long.splice(2..3, [0xff; 11]);
    assert_rejected(&too_long, "varint longer than 10 bytes");
}

#[test]
fn malformed_snapshot_in_message_is_rejected() {
    let mut flags = HEADER;
    flags[10] = 0b1000;
    // Snapshot flag set, no entries, then a conf state with a voter count
    // larger than the input.
    assert_rejected(
        &[&flags[..], &[0, 0, 0, 100]].concat(),
        "more voters than bytes",
    );
    // auto_leave flags byte with an unknown bit.
    let cs = [0, 0, 0, 0, 2];
    assert_rejected(
        &[&flags[..], &[0, 0, 0], &cs, &[0, 0]].concat(),
        "unknown conf state flags",
    );
}

#[test]
fn every_strict_prefix_is_an_error() {
    let m = full_message(MessageType::Snapshot);
    let buf = encoded(|out| encode_message(&m, out));
    for cut in 0..buf.len() {
        assert!(
            decode_message(&buf.slice(..cut)).is_err(),
            "prefix {cut} decoded"
        );
    }
}

#[test]
fn errors_name_the_record() {
    let junk = Bytes::from_static(&[1]);
    let named = [
        (decode_entry(&junk).unwrap_err(), "entry"),
        (decode_hard_state(&junk).unwrap_err(), "hard state"),
        (decode_conf_state(&junk).unwrap_err(), "conf state"),
        (
            decode_snapshot_metadata(&junk).unwrap_err(),
            "snapshot metadata",
        ),
        (decode_snapshot(&junk).unwrap_err(), "snapshot"),
        (decode_message(&junk).unwrap_err(), "message"),
    ];
    for (err, what) in named {
        assert_eq!(
            err.to_string(),
            format!("malformed {what}: input ends early")
        );
    }
    let err = ConfChange::decode(&[1]).unwrap_err();
    assert_eq!(err.to_string(), "malformed conf change: input ends early");
}
