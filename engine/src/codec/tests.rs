//! Known-bytes vectors pin the format; proptest checks round trips, truncations and arbitrary input.

use super::*;
use proptest::prelude::*;

fn cond(epoch: Option<u64>, if_version: Option<u64>, if_absent: bool) -> WriteCond {
    WriteCond {
        epoch,
        if_version,
        if_absent,
    }
}

/// One op of every kind and one compare of every kind, with their bytes written out by hand.
fn known_ops() -> (Vec<Op>, Vec<u8>) {
    let ops = vec![
        Op::Put {
            key: b"k".to_vec(),
            value: b"v".to_vec(),
            cond: cond(Some(3), None, true),
        },
        Op::Delete {
            key: b"d".to_vec(),
            cond: cond(None, Some(0), false),
        },
        Op::incr(b"n", -2),
        Op::Checkpoint {
            entity: b"e".to_vec(),
            name: b"c".to_vec(),
            data: vec![],
            epoch: Some(300),
        },
        Op::Get { key: b"g".to_vec() },
        Op::Txn {
            compares: vec![
                Compare::Value {
                    key: b"a".to_vec(),
                    op: CmpOp::Eq,
                    value: b"1".to_vec(),
                },
                Compare::Version {
                    key: b"a".to_vec(),
                    op: CmpOp::NotEq,
                    ts: 128,
                },
                Compare::Exists {
                    key: b"b".to_vec(),
                    exists: false,
                },
                Compare::Epoch {
                    entity: b"e".to_vec(),
                    op: CmpOp::Greater,
                    epoch: 1,
                },
                Compare::Version {
                    key: vec![],
                    op: CmpOp::Less,
                    ts: u64::MAX,
                },
            ],
            success: vec![Op::Get { key: b"a".to_vec() }],
            failure: vec![],
        },
    ];
    #[rustfmt::skip]
    let bytes = vec![
        0x01, 0x06,                                  // version 1, 6 ops
        0x01, 0x01, b'k', 0x01, b'v', 0x05, 0x03,    // Put k v, flags epoch|if_absent, epoch 3
        0x02, 0x01, b'd', 0x02, 0x00,                // Delete d, flags if_version, if_version 0
        0x03, 0x01, b'n', 0x03, 0x00,                // Incr n, zigzag(-2) = 3, no conditions
        0x04, 0x01, b'e', 0x01, b'c', 0x00, 0x01, 0xac, 0x02, // Checkpoint e c "", epoch Some(300)
        0x05, 0x01, b'g',                            // Get g
        0x06, 0x05,                                  // Txn, 5 compares
        0x01, 0x01, b'a', 0x00, 0x01, b'1',          //   Value a == "1"
        0x02, 0x01, b'a', 0x01, 0x80, 0x01,          //   Version a != 128
        0x03, 0x01, b'b', 0x00,                      //   Exists b false
        0x04, 0x01, b'e', 0x03, 0x01,                //   Epoch e > 1
        0x02, 0x00, 0x02,                            //   Version "" < u64::MAX
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01,
        0x01, 0x05, 0x01, b'a',                      //   success: [Get a]
        0x00,                                        //   failure: []
    ];
    (ops, bytes)
}

fn known_results() -> (Vec<OpResult>, Vec<u8>) {
    let results = vec![
        Ok(OpOutcome::Written { ts: 1, epoch: 0 }),
        Ok(OpOutcome::Deleted {
            ts: 2,
            existed: true,
        }),
        Ok(OpOutcome::Incremented {
            value: -1,
            ts: 3,
            epoch: 1,
        }),
        Ok(OpOutcome::Checkpointed { epoch: 2, ts: 4 }),
        Ok(OpOutcome::Read(None)),
        Ok(OpOutcome::Read(Some(Versioned {
            value: b"x".to_vec(),
            ts: 5,
            epoch: 2,
        }))),
        Ok(OpOutcome::Txn {
            succeeded: false,
            results: vec![OpOutcome::Read(None)],
        }),
        Err(OpError::StaleEpoch { current: 7 }),
        Err(OpError::ConditionFailed { current_version: 0 }),
        Err(OpError::NotAnInteger),
        Err(OpError::Overflow),
        Err(OpError::InvalidKey("entity contains '/'")),
        Err(OpError::Invalid("empty checkpoint name")),
    ];
    #[rustfmt::skip]
    let bytes = vec![
        0x01, 0x0d,                   // version 1, 13 results
        0x01, 0x01, 0x00,             // Written ts 1 epoch 0
        0x02, 0x02, 0x01,             // Deleted ts 2 existed
        0x03, 0x01, 0x03, 0x01,       // Incremented zigzag(-1) = 1, ts 3, epoch 1
        0x04, 0x02, 0x04,             // Checkpointed epoch 2 ts 4
        0x05, 0x00,                   // Read(None)
        0x05, 0x01, 0x01, b'x', 0x05, 0x02, // Read(Some("x", ts 5, epoch 2))
        0x06, 0x00, 0x01, 0x05, 0x00, // Txn failed, [Read(None)]
        0x81, 0x07,                   // StaleEpoch 7
        0x82, 0x00,                   // ConditionFailed 0
        0x83,                         // NotAnInteger
        0x84,                         // Overflow
        0x85, 0x03,                   // InvalidKey "entity contains '/'"
        0x86, 0x02,                   // Invalid "empty checkpoint name"
    ];
    (results, bytes)
}

#[test]
fn codec_known_bytes_ops() {
    let (ops, bytes) = known_ops();
    assert_eq!(encode_ops(&ops).unwrap(), bytes);
    assert_eq!(decode_ops(&bytes).unwrap(), ops);
}

#[test]
fn codec_known_bytes_results() {
    let (results, bytes) = known_results();
    assert_eq!(encode_results(&results).unwrap(), bytes);
    assert_eq!(decode_results(&bytes).unwrap(), results);
}

#[test]
fn codec_empty_lists() {
    assert_eq!(encode_ops(&[]).unwrap(), [1, 0]);
    assert_eq!(decode_ops(&[1, 0]).unwrap(), vec![]);
    assert_eq!(encode_results(&[]).unwrap(), [1, 0]);
    assert_eq!(decode_results(&[1, 0]).unwrap(), vec![]);
    assert_eq!(decode_ops(&[]), Err(CodecError::Truncated));
    assert_eq!(decode_results(&[]), Err(CodecError::Truncated));
}

#[test]
fn codec_every_truncation_of_the_known_vectors_is_an_error() {
    let (_, ops) = known_ops();
    for cut in 0..ops.len() {
        assert!(decode_ops(&ops[..cut]).is_err(), "ops cut at {cut}");
    }
    let (_, results) = known_results();
    for cut in 0..results.len() {
        assert!(
            decode_results(&results[..cut]).is_err(),
            "results cut at {cut}"
        );
    }
}

#[test]
fn codec_refuses_trailing_bytes_and_unknown_versions() {
    let (_, mut ops) = known_ops();
    ops.push(0);
    assert_eq!(decode_ops(&ops), Err(CodecError::TrailingBytes(1)));
    let (_, mut results) = known_results();
    results.extend_from_slice(&[0x83, 0x83]);
    assert_eq!(decode_results(&results), Err(CodecError::TrailingBytes(2)));
    assert_eq!(decode_ops(&[2, 0]), Err(CodecError::UnknownVersion(2)));
    assert_eq!(decode_results(&[0, 0]), Err(CodecError::UnknownVersion(0)));
}

#[test]
fn codec_nested_txn_is_refused_both_ways() {
    let inner = Op::Txn {
        compares: vec![],
        success: vec![],
        failure: vec![],
    };
    let nested = Op::Txn {
        compares: vec![],
        success: vec![],
        failure: vec![inner],
    };
    assert_eq!(encode_ops(&[nested]), Err(CodecError::NestedTxn));
    // version, 1 op, Txn: 0 compares, 1 success op which is a Txn with empty parts, 0 failure.
    let bytes = [1, 1, OP_TXN, 0, 1, OP_TXN, 0, 0, 0, 0];
    assert_eq!(decode_ops(&bytes), Err(CodecError::NestedTxn));

    let nested = OpOutcome::Txn {
        succeeded: true,
        results: vec![OpOutcome::Txn {
            succeeded: true,
            results: vec![],
        }],
    };
    assert_eq!(encode_results(&[Ok(nested)]), Err(CodecError::NestedTxn));
    let bytes = [1, 1, OUT_TXN, 1, 1, OUT_TXN, 1, 0];
    assert_eq!(decode_results(&bytes), Err(CodecError::NestedTxn));
    // Inside a Txn outcome, error tags are not outcomes.
    let bytes = [1, 1, OUT_TXN, 1, 1, ERR_STALE_EPOCH, 7];
    assert!(matches!(
        decode_results(&bytes),
        Err(CodecError::UnknownTag { .. })
    ));
}

#[test]
fn codec_varints_are_canonical_and_bounded() {
    // Get with a key length of 1 written in two bytes (0x81 0x00): not the shortest form.
    assert_eq!(
        decode_ops(&[1, 1, OP_GET, 0x81, 0x00, b'k']),
        Err(CodecError::BadVarint)
    );
    // u64::MAX + 1 does not fit (10th byte > 1), and 11-byte varints do not exist.
    let mut too_big = vec![1, 1, OUT_WRITTEN];
    too_big.extend_from_slice(&[0xff; 9]);
    too_big.extend_from_slice(&[0x02, 0x00]);
    assert_eq!(decode_results(&too_big), Err(CodecError::BadVarint));
    let mut eleven = vec![1, 1, OUT_WRITTEN];
    eleven.extend_from_slice(&[0x80; 10]);
    eleven.extend_from_slice(&[0x01, 0x00]);
    assert_eq!(decode_results(&eleven), Err(CodecError::BadVarint));
    for v in [
        0,
        1,
        127,
        128,
        16_383,
        16_384,
        u64::MAX / 2,
        u64::MAX - 1,
        u64::MAX,
    ] {
        let ok = [Ok(OpOutcome::Checkpointed { epoch: v, ts: v })];
        assert_eq!(decode_results(&encode_results(&ok).unwrap()).unwrap(), ok);
    }
    for v in [0, 1, -1, 63, -64, 64, -65, i64::MAX, i64::MIN] {
        assert_eq!(unzigzag(zigzag(v)), v);
        let ok = [Ok(OpOutcome::Incremented {
            value: v,
            ts: 0,
            epoch: 0,
        })];
        assert_eq!(decode_results(&encode_results(&ok).unwrap()).unwrap(), ok);
    }
    assert_eq!(zigzag(0), 0);
    assert_eq!(zigzag(-1), 1);
    assert_eq!(zigzag(1), 2);
    assert_eq!(zigzag(i64::MIN), u64::MAX);
}

#[test]
fn codec_huge_lengths_and_counts_fail_before_allocating() {
    let huge = |prefix: &[u8]| {
        let mut b = prefix.to_vec();
        b.extend_from_slice(&[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]);
        b
    };
    // u64::MAX ops, results, key bytes, compares, txn ops, txn outcomes: all refused as truncated.
    assert_eq!(decode_ops(&huge(&[1])), Err(CodecError::Truncated));
    assert_eq!(decode_results(&huge(&[1])), Err(CodecError::Truncated));
    assert_eq!(
        decode_ops(&huge(&[1, 1, OP_GET])),
        Err(CodecError::Truncated)
    );
    assert_eq!(
        decode_ops(&huge(&[1, 1, OP_TXN])),
        Err(CodecError::Truncated)
    );
    assert_eq!(
        decode_ops(&huge(&[1, 1, OP_TXN, 0])),
        Err(CodecError::Truncated)
    );
    assert_eq!(
        decode_results(&huge(&[1, 1, OUT_TXN, 1])),
        Err(CodecError::Truncated)
    );
    // A count just one more than the remaining bytes can hold.
    assert_eq!(decode_ops(&[1, 2, OP_GET, 0]), Err(CodecError::Truncated));
    assert_eq!(
        decode_ops(&[1, 1, OP_GET, 2, b'k']),
        Err(CodecError::Truncated)
    );
}

#[test]
fn codec_unknown_tags_flags_and_reasons_are_errors() {
    assert_eq!(
        decode_ops(&[1, 1, 0x08, 0]),
        Err(CodecError::UnknownTag { what: "op", tag: 8 })
    );
    assert_eq!(
        decode_ops(&[1, 1, OP_DELETE, 0, 0b1000]),
        Err(CodecError::UnknownTag {
            what: "condition flags",
            tag: 0b1000
        })
    );
    assert_eq!(
        decode_ops(&[1, 1, OP_TXN, 1, CMP_EXISTS, 0, 2, 0, 0]),
        Err(CodecError::UnknownTag {
            what: "exists flag",
            tag: 2
        })
    );
    assert_eq!(
        decode_ops(&[1, 1, OP_TXN, 1, CMP_EPOCH, 0, 4, 0, 0, 0]),
        Err(CodecError::UnknownTag {
            what: "comparison",
            tag: 4
        })
    );
    assert_eq!(
        decode_results(&[1, 1, ERR_INVALID_KEY, 0]),
        Err(CodecError::UnknownReason {
            what: "invalid-key",
            code: 0
        })
    );
    assert_eq!(
        decode_results(&[1, 1, ERR_INVALID, 4]),
        Err(CodecError::UnknownReason {
            what: "invalid-operation",
            code: 4
        })
    );
    assert_eq!(
        encode_results(&[Err(OpError::Invalid("no such reason"))]),
        Err(CodecError::UnregisteredReason {
            what: "invalid-operation",
            reason: "no such reason"
        })
    );
}

/// Every `InvalidKey("...")`/`Invalid("...")` the engine can return has a wire code, so encoding a
/// real result never fails with `UnregisteredReason`.
#[test]
fn codec_reason_tables_cover_every_engine_reason() {
    let sources = [
        ("apply.rs", include_str!("../apply.rs")),
        ("engine.rs", include_str!("../engine.rs")),
        ("gc.rs", include_str!("../gc.rs")),
        ("keys.rs", include_str!("../keys.rs")),
    ];
    let mut seen = 0;
    for (file, text) in sources {
        for (pattern, table) in [
            ("OpError::InvalidKey(\"", INVALID_KEY_REASONS),
            ("OpError::Invalid(\"", INVALID_REASONS),
        ] {
            for (at, _) in text.match_indices(pattern) {
                let rest = &text[at + pattern.len()..];
                let reason = &rest[..rest.find('"').expect("closing quote")];
                assert!(
                    table.contains(&reason),
                    "{file}: reason {reason:?} missing from the codec table"
                );
                seen += 1;
            }
        }
    }
    assert!(seen >= 5, "the scan found only {seen} reasons");
}

fn bytes() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        3 => proptest::collection::vec(any::<u8>(), 0..8),
        1 => proptest::collection::vec(any::<u8>(), 120..300),
    ]
}

fn u64s() -> impl Strategy<Value = u64> {
    prop_oneof![0u64..200, any::<u64>(), Just(u64::MAX)]
}

fn cmp_op() -> impl Strategy<Value = CmpOp> {
    prop_oneof![
        Just(CmpOp::Eq),
        Just(CmpOp::NotEq),
        Just(CmpOp::Less),
        Just(CmpOp::Greater)
    ]
}

fn write_cond() -> impl Strategy<Value = WriteCond> {
    (
        proptest::option::of(u64s()),
        proptest::option::of(u64s()),
        any::<bool>(),
    )
        .prop_map(|(epoch, if_version, if_absent)| WriteCond {
            epoch,
            if_version,
            if_absent,
        })
}

fn compare() -> impl Strategy<Value = Compare> {
    prop_oneof![
        (bytes(), cmp_op(), bytes()).prop_map(|(key, op, value)| Compare::Value { key, op, value }),
        (bytes(), cmp_op(), u64s()).prop_map(|(key, op, ts)| Compare::Version { key, op, ts }),
        (bytes(), any::<bool>()).prop_map(|(key, exists)| Compare::Exists { key, exists }),
        (bytes(), cmp_op(), u64s()).prop_map(|(entity, op, epoch)| Compare::Epoch {
            entity,
            op,
            epoch
        }),
    ]
}

fn simple_op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (bytes(), bytes(), write_cond()).prop_map(|(key, value, cond)| Op::Put {
            key,
            value,
            cond
        }),
        (bytes(), write_cond()).prop_map(|(key, cond)| Op::Delete { key, cond }),
        (bytes(), any::<i64>(), write_cond()).prop_map(|(key, delta, cond)| Op::Incr {
            key,
            delta,
            cond
        }),
        (bytes(), bytes(), bytes(), proptest::option::of(u64s())).prop_map(
            |(entity, name, data, epoch)| Op::Checkpoint {
                entity,
                name,
                data,
                epoch
            }
        ),
        bytes().prop_map(|key| Op::Get { key }),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => simple_op(),
        1 => (
            proptest::collection::vec(compare(), 0..5),
            proptest::collection::vec(simple_op(), 0..5),
            proptest::collection::vec(simple_op(), 0..5),
        )
            .prop_map(|(compares, success, failure)| Op::Txn {
                compares,
                success,
                failure
            }),
    ]
}

fn versioned() -> impl Strategy<Value = Versioned> {
    (bytes(), u64s(), u64s()).prop_map(|(value, ts, epoch)| Versioned { value, ts, epoch })
}

fn simple_outcome() -> impl Strategy<Value = OpOutcome> {
    prop_oneof![
        (u64s(), u64s()).prop_map(|(ts, epoch)| OpOutcome::Written { ts, epoch }),
        (u64s(), any::<bool>()).prop_map(|(ts, existed)| OpOutcome::Deleted { ts, existed }),
        (any::<i64>(), u64s(), u64s())
            .prop_map(|(value, ts, epoch)| { OpOutcome::Incremented { value, ts, epoch } }),
        (u64s(), u64s()).prop_map(|(epoch, ts)| OpOutcome::Checkpointed { epoch, ts }),
        proptest::option::of(versioned()).prop_map(OpOutcome::Read),
    ]
}

fn op_error() -> impl Strategy<Value = OpError> {
    prop_oneof![
        u64s().prop_map(|current| OpError::StaleEpoch { current }),
        u64s().prop_map(|current_version| OpError::ConditionFailed { current_version }),
        Just(OpError::NotAnInteger),
        Just(OpError::Overflow),
        proptest::sample::select(INVALID_KEY_REASONS).prop_map(OpError::InvalidKey),
        proptest::sample::select(INVALID_REASONS).prop_map(OpError::Invalid),
    ]
}

fn op_result() -> impl Strategy<Value = OpResult> {
    prop_oneof![
        3 => simple_outcome().prop_map(Ok),
        1 => (any::<bool>(), proptest::collection::vec(simple_outcome(), 0..5))
            .prop_map(|(succeeded, results)| Ok(OpOutcome::Txn { succeeded, results })),
        2 => op_error().prop_map(Err),
    ]
}

proptest! {
    #[test]
    fn codec_ops_round_trip_and_truncations_fail(ops in proptest::collection::vec(op(), 0..8)) {
        let bytes = encode_ops(&ops).unwrap();
        prop_assert_eq!(decode_ops(&bytes).unwrap(), ops);
        for cut in 0..bytes.len() {
            prop_assert!(decode_ops(&bytes[..cut]).is_err(), "cut at {}", cut);
        }
    }

    #[test]
    fn codec_results_round_trip_and_truncations_fail(
        results in proptest::collection::vec(op_result(), 0..10)
    ) {
        let bytes = encode_results(&results).unwrap();
        prop_assert_eq!(decode_results(&bytes).unwrap(), results);
        for cut in 0..bytes.len() {
            prop_assert!(decode_results(&bytes[..cut]).is_err(), "cut at {}", cut);
        }
    }

    #[test]
    fn codec_random_bytes_never_panic(mut input in proptest::collection::vec(any::<u8>(), 0..200)) {
        let _ = decode_ops(&input);
        let _ = decode_results(&input);
        // With a valid version byte the decoders get past the first check.
        if let Some(first) = input.first_mut() {
            *first = FORMAT_VERSION;
        }
        let _ = decode_ops(&input);
        let _ = decode_results(&input);
    }

    #[test]
    fn codec_mutated_encodings_never_panic_and_reencode_identically(
        ops in proptest::collection::vec(op(), 1..5),
        flips in proptest::collection::vec((any::<proptest::sample::Index>(), any::<u8>()), 1..4),
    ) {
        let mut bytes = encode_ops(&ops).unwrap();
        for (at, byte) in flips {
            let i = at.index(bytes.len());
            bytes[i] = byte;
        }
        // One encoding per value: whatever decodes re-encodes to exactly the same bytes.
        if let Ok(decoded) = decode_ops(&bytes) {
            prop_assert_eq!(encode_ops(&decoded).unwrap(), bytes);
        }
    }
}
