use super::*;
use edgetls_testkit::sort_patterns::*;
use proptest::prelude::*;

const BIG: usize = 1 << 20; // 1,048,576: the "1M+" inputs.

fn check(mut v: Vec<u64>) -> Stats {
    let mut expected = v.clone();
    expected.sort_unstable();
    let stats = introsort_stats(&mut v);
    assert!(v == expected, "introsort result differs from sort_unstable");
    // Recursing only into the smaller side bounds the stack by log2(n) frames (+1 for the root).
    assert!(
        stats.max_frames <= log2(v.len()) + 1,
        "{} frames for n = {}",
        stats.max_frames,
        v.len()
    );
    stats
}

#[test]
fn sorted_input_never_falls_back() {
    assert_eq!(check(sorted(BIG)).heapsorts, 0);
}

#[test]
fn reversed_input_never_falls_back() {
    assert_eq!(check(reversed(BIG)).heapsorts, 0);
}

#[test]
fn organ_pipe_input_is_sorted_with_bounded_stack() {
    check(organ_pipe(BIG));
}

#[test]
fn all_equal_keys_split_evenly() {
    // The run of keys equal to the ancestor pivot is set aside in one pass: no fallback.
    assert_eq!(check(all_equal(BIG)).heapsorts, 0);
}

#[test]
fn random_input_never_falls_back() {
    assert_eq!(check(random(BIG, 42)).heapsorts, 0);
}

#[test]
fn median_of_3_killer_hits_the_depth_limit_and_heapsort_finishes() {
    let stats = check(median_of_3_killer(BIG, |v, less| {
        super::introsort_by(v, less)
    }));
    // The adversarial input really does defeat median-of-three: only the fallback saves it.
    assert!(
        stats.heapsorts > 0,
        "killer input did not reach the depth limit: {stats:?}"
    );
}

#[test]
fn killer_is_a_permutation_of_distinct_keys() {
    let mut k = median_of_3_killer(10_000, |v, less| super::introsort_by(v, less));
    k.sort_unstable();
    assert!(k.iter().enumerate().all(|(i, &v)| v == i as u64));
}

#[test]
fn heapsort_alone_sorts() {
    for n in [0usize, 1, 2, 3, 10, 1000] {
        let mut v = random(n, 7);
        let mut e = v.clone();
        e.sort_unstable();
        heapsort(&mut v, &mut |a: &u64, b: &u64| a < b);
        assert_eq!(v, e, "n = {n}");
    }
}

#[test]
fn inconsistent_comparator_neither_panics_nor_loses_elements() {
    let mut v = random(10_000, 3);
    let mut flip = false;
    introsort_by(&mut v, |a, b| {
        flip = !flip;
        flip ^ (a < b)
    });
    let mut got = v.clone();
    got.sort_unstable();
    let mut want = random(10_000, 3);
    want.sort_unstable();
    assert_eq!(got, want);
}

proptest! {
    #[test]
    fn matches_sort_unstable(mut v in proptest::collection::vec(any::<u16>(), 0..2000)) {
        let mut e = v.clone();
        e.sort_unstable();
        introsort(&mut v);
        prop_assert_eq!(v, e);
    }

    #[test]
    fn matches_sort_unstable_by_key_on_pairs(mut v in proptest::collection::vec((0u8..4, any::<u32>()), 0..500)) {
        let mut e = v.clone();
        e.sort_unstable_by_key(|p| p.0);
        introsort_by_key(&mut v, |p| p.0);
        let keys: Vec<u8> = v.iter().map(|p| p.0).collect();
        let ekeys: Vec<u8> = e.iter().map(|p| p.0).collect();
        prop_assert_eq!(keys, ekeys);
        v.sort_unstable();
        e.sort_unstable();
        prop_assert_eq!(v, e);
    }
}

#[test]
fn network_sorts_every_zero_one_input_of_every_length() {
    // 0-1 principle: a comparator network sorts all inputs iff it sorts all 0/1 inputs.
    for n in 0..=16usize {
        for bits in 0u32..(1 << n) {
            let mut v: Vec<u8> = (0..n).map(|i| ((bits >> i) & 1) as u8).collect();
            small_sort(&mut v, &mut |a: &u8, b: &u8| a < b);
            assert!(
                v.windows(2).all(|w| w[0] <= w[1]),
                "n = {n}, bits = {bits:b}"
            );
        }
    }
}

#[test]
fn partition_splits_around_the_predicate_for_all_sizes_near_the_block() {
    for len in (0..700).step_by(7).chain([255, 256, 257, 511, 512, 513]) {
        let mut v = random(len, len as u64 + 1);
        let pivot = v.get(len / 3).copied().unwrap_or(0);
        let mut before = v.clone();
        let split = partition(&mut v, &mut |x: &u64| *x < pivot);
        assert!(v[..split].iter().all(|&x| x < pivot), "len {len}");
        assert!(v[split..].iter().all(|&x| x >= pivot), "len {len}");
        before.sort_unstable();
        v.sort_unstable();
        assert_eq!(v, before, "len {len}: keys lost or duplicated");
    }
}
