//! Golden set `rng` (reference commit 5565d240c4a4, torch 2.6.0): PyTorch CPU `manual_seed` +
//! `randn` float32, in the pipeline's draw order. Tolerance: BITWISE, for both builds of the
//! Box–Muller kernel (`avx2.*` and `scalar.*`): the README says a port that reproduces one path
//! exactly is bitwise equal, and the noise feeds CFG ×7.5 over many steps.

mod common;

use t2_models::rng::{NormalKernel, TorchGenerator};

fn bitwise(what: &str, port: &[f32], reference: &[f32]) {
    assert_eq!(port.len(), reference.len(), "{what}: length");
    let bad: Vec<usize> = (0..port.len())
        .filter(|&i| port[i].to_bits() != reference[i].to_bits())
        .collect();
    assert!(
        bad.is_empty(),
        "{what}: {} of {} values differ; first at {}: {} vs {}",
        bad.len(),
        port.len(),
        bad[0],
        port[bad[0]],
        reference[bad[0]]
    );
}

#[test]
fn rng_bitwise() {
    let Some(dir) = common::set_dir("rng") else {
        return;
    };
    let io = common::Io::open(&dir);
    let names = io.names();
    // Discover the (path, seed, n) cases from the tensor names so any seeds/sizes work.
    let mut cases = std::collections::BTreeSet::new();
    for n in &names {
        let parts: Vec<&str> = n.split('.').collect();
        if parts.len() >= 3 && parts[1].starts_with('s') && parts[2].starts_with('n') {
            cases.insert((
                parts[0].to_string(),
                parts[1].to_string(),
                parts[2].to_string(),
            ));
        }
    }
    assert!(
        !cases.is_empty(),
        "rng set has no `<path>.s<seed>.n<N>.*` tensors"
    );
    let mut checked = 0;
    for (path, s, n) in &cases {
        let kernel = match path.as_str() {
            "avx2" => NormalKernel::Avx2,
            "scalar" => NormalKernel::Scalar,
            other => panic!("unknown rng path `{other}`"),
        };
        let seed: u64 = s[1..].parse().expect("seed");
        let rows: usize = n[1..].parse().expect("N");
        let ss = io.f32(&format!("{path}.{s}.ss_noise"));
        let d1 = io.f32(&format!("{path}.{s}.{n}.draw1"));
        let d2 = io.f32(&format!("{path}.{s}.{n}.draw2"));
        assert_eq!(d1.shape, vec![rows, 32]);
        let mut g = TorchGenerator::with_kernel(seed, kernel);
        bitwise(
            &format!("{path}.{s}.ss_noise"),
            &g.randn(ss.data.len()),
            &ss.data,
        );
        bitwise(
            &format!("{path}.{s}.{n}.draw1"),
            &g.randn(d1.data.len()),
            &d1.data,
        );
        bitwise(
            &format!("{path}.{s}.{n}.draw2"),
            &g.randn(d2.data.len()),
            &d2.data,
        );
        checked += 3;
    }
    // The small-numel and tail paths: `<path>.s<seed>.extra.numel<K>`, drawn right after
    // seeding, the per-element path (K < 16) first, then the others, each group ascending.
    let mut extras: std::collections::BTreeMap<(String, String), Vec<usize>> = Default::default();
    for n in &names {
        let parts: Vec<&str> = n.split('.').collect();
        if parts.len() == 4 && parts[2] == "extra" {
            let k: usize = parts[3]
                .strip_prefix("numel")
                .expect("extra.numel<K>")
                .parse()
                .expect("K");
            extras
                .entry((parts[0].to_string(), parts[1].to_string()))
                .or_default()
                .push(k);
        }
    }
    for ((path, s), mut ks) in extras {
        ks.sort_by_key(|&k| (k >= 16, k));
        let kernel = match path.as_str() {
            "avx2" => NormalKernel::Avx2,
            "scalar" => NormalKernel::Scalar,
            other => panic!("unknown rng path `{other}`"),
        };
        let mut g = TorchGenerator::with_kernel(s[1..].parse().expect("seed"), kernel);
        for k in ks {
            let name = format!("{path}.{s}.extra.numel{k}");
            let want = io.f32(&name);
            assert_eq!(want.data.len(), k, "{name}");
            bitwise(&name, &g.randn(k), &want.data);
            checked += 1;
        }
    }
    eprintln!("rng: {checked} tensors bitwise equal");
}
