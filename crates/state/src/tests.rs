use super::*;

fn sample(n: usize) -> Latents {
    Latents {
        model_id: "microsoft/TRELLIS.2-4B".into(),
        resolution: 1024,
        coords: (0..n as i32)
            .flat_map(|i| [0, i % 64, (i / 64) % 64, i / 4096])
            .collect(),
        shape_channels: 32,
        shape: (0..n * 32).map(|i| i as f32 * 0.25 - 3.0).collect(),
        tex_channels: 32,
        tex: (0..n * 32).map(|i| -(i as f32) * 1e-3).collect(),
    }
}

#[test]
fn round_trips_exactly() {
    let key = StateKey::generate();
    for n in [0, 1, 7, 1000] {
        let l = sample(n);
        let bytes = encode(&l, &key).unwrap();
        assert_eq!(
            bytes.len(),
            padded(l.model_id.len()) + 4 * n * 68 + MAC_BYTES
        );
        assert_eq!(decode(&bytes, &key).unwrap(), l);
    }
}

#[test]
fn layout_matches_the_documented_offsets() {
    let key = StateKey::from_bytes([7; KEY_BYTES]);
    let mut l = sample(2);
    l.model_id = "abcde".into(); // 24 + 5 = 29 → padded to 32
    let b = encode(&l, &key).unwrap();
    assert_eq!(&b[..8], MAGIC);
    assert_eq!(u16_at(&b, 8), 1);
    assert_eq!(u16_at(&b, 10), 5);
    assert_eq!(u32_at(&b, 12), 1024);
    assert_eq!(u32_at(&b, 16), 2);
    assert_eq!((u16_at(&b, 20), u16_at(&b, 22)), (32, 32));
    assert_eq!(&b[24..29], b"abcde");
    assert_eq!(&b[29..32], &[0, 0, 0]);
    assert_eq!(i32::from_le_bytes(b[36..40].try_into().unwrap()), 0); // coords[0][1]
    assert_eq!(i32::from_le_bytes(b[52..56].try_into().unwrap()), 1); // coords[1][1]
    let shape0 = 32 + 16 * 2;
    assert_eq!(
        f32::from_le_bytes(b[shape0..shape0 + 4].try_into().unwrap()),
        -3.0
    );
}

#[test]
fn any_flipped_bit_is_rejected() {
    let key = StateKey::generate();
    let bytes = encode(&sample(3), &key).unwrap();
    for i in 0..bytes.len() {
        let mut t = bytes.clone();
        t[i] ^= 0x10;
        let err = decode(&t, &key).unwrap_err();
        match i {
            0..8 => assert_eq!(err, StateError::BadMagic, "byte {i}"),
            8..10 => assert!(matches!(err, StateError::UnsupportedVersion(_)), "byte {i}"),
            _ => assert_eq!(err, StateError::BadSignature, "byte {i}"),
        }
    }
}

#[test]
fn truncated_and_extended_states_are_rejected() {
    let key = StateKey::generate();
    let bytes = encode(&sample(3), &key).unwrap();
    assert_eq!(
        decode(&bytes[..HEADER_BYTES], &key),
        Err(StateError::Truncated { len: HEADER_BYTES })
    );
    assert_eq!(decode(&[], &key), Err(StateError::Truncated { len: 0 }));
    for cut in [1, 4, 31, 32, 100] {
        assert_eq!(
            decode(&bytes[..bytes.len() - cut], &key),
            Err(StateError::BadSignature),
            "cut {cut}"
        );
    }
    let mut longer = bytes.clone();
    longer.extend_from_slice(&[0; 4]);
    assert_eq!(decode(&longer, &key), Err(StateError::BadSignature));
}

#[test]
fn a_state_signed_by_another_server_is_rejected() {
    let bytes = encode(&sample(2), &StateKey::generate()).unwrap();
    assert_eq!(
        decode(&bytes, &StateKey::generate()),
        Err(StateError::BadSignature)
    );
}

#[test]
fn foreign_formats_are_rejected_without_parsing() {
    let key = StateKey::generate();
    // A Python pickle (protocol 4) and a zip/torch.save header: never interpreted.
    let pickle = b"\x80\x04\x95\x10\x00\x00\x00\x00\x00\x00\x00}\x94(\x8c\x06coords\x94K\x01u.xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx";
    assert_eq!(decode(pickle, &key), Err(StateError::BadMagic));
    let zip = [b"PK\x03\x04".as_slice(), &[0u8; 60]].concat();
    assert_eq!(decode(&zip, &key), Err(StateError::BadMagic));
    let mut future = encode(&sample(1), &key).unwrap();
    future[8..10].copy_from_slice(&2u16.to_le_bytes());
    assert_eq!(
        decode(&future, &key),
        Err(StateError::UnsupportedVersion(2))
    );
}

#[test]
fn a_validly_signed_but_inconsistent_header_is_a_typed_error() {
    // Forge with the key (as a buggy writer sharing it would): N says 5 but data holds 3 tokens.
    let key = StateKey::generate();
    let bytes = encode(&sample(3), &key).unwrap();
    let mut body = bytes[..bytes.len() - MAC_BYTES].to_vec();
    body[16..20].copy_from_slice(&5u32.to_le_bytes());
    let mut mac = key.mac();
    mac.update(&body);
    body.extend_from_slice(&mac.finalize().into_bytes());
    assert!(matches!(decode(&body, &key), Err(StateError::BadHeader(_))));
}

#[test]
fn inconsistent_latents_are_refused_at_encode() {
    let key = StateKey::generate();
    let mut l = sample(2);
    l.shape.pop();
    assert!(matches!(
        encode(&l, &key),
        Err(StateError::InvalidLatents(_))
    ));
    let mut l = sample(2);
    l.coords.push(1);
    assert!(matches!(
        encode(&l, &key),
        Err(StateError::InvalidLatents(_))
    ));
}

#[test]
fn key_file_is_created_once_and_reused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.key");
    let a = StateKey::load_or_create(&path).unwrap();
    let b = StateKey::load_or_create(&path).unwrap();
    assert_eq!(a.0, b.0);
    assert_eq!(format!("{a:?}"), "StateKey(..)");
    std::fs::write(&path, "abcd").unwrap();
    assert!(matches!(
        StateKey::load_or_create(&path),
        Err(KeyError::BadLength(2))
    ));
}
