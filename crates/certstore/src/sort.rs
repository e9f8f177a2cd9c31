//! Introsort: the index's own sort, whose stack depth and running time are bounded on every input.
//!
//! Apache Traffic Server crashed near 10,000 certificates because its quicksort took the first
//! element as pivot and recursed once per element on already-sorted input (TS-3867). This sort:
//! - picks the median of the first, middle and last keys as pivot (for ranges over 128 keys each
//!   of the three is first the median of its neighbours: Tukey's ninther) and partitions around a
//!   copy of it, so sorted input is split in halves with no key moved, and reversed input evenly;
//! - partitions without branches on the comparison result (branch-free Lomuto), so random keys
//!   cost no mispredictions;
//! - sets a run of keys equal to the pivot aside in one pass when the pivot equals the key that
//!   bounded its range (pdqsort's trick), so many duplicates cost linear time, not a fallback;
//! - recurses only into the smaller part and loops on the larger, so the stack holds at most
//!   log2(n) frames whatever the pivots were;
//! - switches a range to heapsort once it is more than 2·log2(n) partitions deep, or earlier,
//!   after log2(n) badly unbalanced partitions (pdqsort's rule), so inputs built to defeat
//!   median-of-three (organ pipes, "median-of-3 killers") stay O(n log n);
//! - finishes ranges of 16 keys or fewer with a sorting network.
//!
//! It sorts `Copy` keys: the index sorts small fixed-size records, and copies let every step
//! move keys through a "hole" instead of swapping, with no `unsafe`.

/// Ranges of at most this many keys are finished by a 16-slot sorting network.
pub(crate) const SMALL: usize = 16;

/// Sorts `v` in ascending order (not stable).
pub fn introsort<T: Copy + Ord>(v: &mut [T]) {
    introsort_by(v, |a, b| a < b);
}

/// Sorts `v` by a key (not stable).
pub fn introsort_by_key<T: Copy, K: Ord>(v: &mut [T], mut key: impl FnMut(&T) -> K) {
    introsort_by(v, |a, b| key(a) < key(b));
}

/// Sorts `v` with `is_less` as the strict weak order (not stable).
///
/// An `is_less` that is not a strict weak order leaves `v` in some permutation of its keys;
/// it never panics or loops forever.
pub fn introsort_by<T: Copy>(v: &mut [T], mut is_less: impl FnMut(&T, &T) -> bool) {
    sort_range(
        v,
        &mut is_less,
        Limits::new(v.len()),
        None,
        &mut Stats::default(),
    );
}

/// What a sort did, for tests that check the depth bounds hold.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Stats {
    /// The deepest chain of nested `sort_range` calls (stack frames).
    pub(crate) max_frames: u32,
    pub(crate) frames: u32,
    /// Ranges handed to heapsort because the depth limit was reached.
    pub(crate) heapsorts: u32,
}

#[cfg(test)]
pub(crate) fn introsort_stats<T: Copy + Ord>(v: &mut [T]) -> Stats {
    let mut stats = Stats::default();
    sort_range(
        v,
        &mut |a: &T, b: &T| a < b,
        Limits::new(v.len()),
        None,
        &mut stats,
    );
    stats
}

/// When a range gives up on quicksort and goes to heapsort.
#[derive(Clone, Copy)]
struct Limits {
    /// Partitions left above this range before the 2·log2(n) depth limit.
    depth: u32,
    /// Badly unbalanced partitions (smaller side under 1/8) still allowed: log2(n), as in
    /// pdqsort. Inputs that defeat median-of-three make nearly every partition bad, and stopping
    /// after log2(n) of them instead of 2·log2(n) halves the work wasted before heapsort.
    bad: u32,
}

impl Limits {
    fn new(n: usize) -> Self {
        Limits {
            depth: 2 * log2(n),
            bad: log2(n),
        }
    }
}

fn log2(n: usize) -> u32 {
    usize::BITS - n.max(1).leading_zeros() - 1
}

fn sort_range<T: Copy, F: FnMut(&T, &T) -> bool>(
    mut v: &mut [T],
    is_less: &mut F,
    mut limits: Limits,
    mut ancestor: Option<T>,
    stats: &mut Stats,
) {
    stats.frames += 1;
    stats.max_frames = stats.max_frames.max(stats.frames);
    loop {
        if v.len() <= SMALL {
            small_sort(v, is_less);
            break;
        }
        if limits.depth == 0 || limits.bad == 0 {
            stats.heapsorts += 1;
            heapsort(v, is_less);
            break;
        }
        limits.depth -= 1;
        let pivot = median_of_three(v, is_less);
        // `ancestor` is the pivot that bounded this range from the left: every key here is >= it.
        // A pivot equal to it starts a run of equal keys: move them all left and drop them.
        let equal_to_ancestor = ancestor.is_some_and(|a| !is_less(&a, &pivot));
        let split = if equal_to_ancestor {
            0
        } else {
            partition(v, &mut |x| is_less(x, &pivot))
        };
        if split == 0 {
            // No key is below the pivot: set aside the keys equal to it (at least the pivot).
            let equal = partition(v, &mut |x| !is_less(&pivot, x));
            v = &mut v[equal..];
            continue;
        }
        // Keys < pivot are left of `split`, keys >= pivot (the pivot among them) right of it.
        let (left, right) = v.split_at_mut(split);
        if left.len().min(right.len()) < (left.len() + right.len()) / 8 {
            limits.bad -= 1;
            break_patterns(left);
            break_patterns(right);
        }
        if left.len() < right.len() {
            sort_range(left, is_less, limits, ancestor, stats);
            v = right;
            ancestor = Some(pivot);
        } else {
            sort_range(right, is_less, limits, Some(pivot), stats);
            v = left;
        }
    }
    stats.frames -= 1;
}

/// After an unbalanced partition, moves keys from pseudo-random places into the slots the next
/// pivot choice samples (pdqsort's remedy). Inputs whose *shape* fools median-of-three, like
/// organ pipes, then get good pivots again; inputs built against this exact algorithm still
/// reach the heapsort fallback, which bounds them.
fn break_patterns<T: Copy>(v: &mut [T]) {
    let len = v.len();
    if len <= SMALL {
        return;
    }
    let mut seed = len as u64 | 1;
    let (m, last) = (len / 2, len - 1);
    for slot in [0, 1, 2, m - 1, m, m + 1, last - 2, last - 1, last] {
        v.swap(slot, (xorshift64(&mut seed) % len as u64) as usize);
    }
}

/// Marsaglia's xorshift64: the next state. Deterministic, so runs are repeatable.
fn xorshift64(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

/// Orders v[a], v[b], v[c] in place (conditional moves, no branches) so v[b] is their median.
/// A sorted triple is left as it is, so sorted ranges stay sorted.
fn sort3<T: Copy, F: FnMut(&T, &T) -> bool>(
    v: &mut [T],
    a: usize,
    b: usize,
    c: usize,
    is_less: &mut F,
) {
    let (x, y, z) = (v[a], v[b], v[c]);
    let swap = is_less(&y, &x);
    let (x, y) = if swap { (y, x) } else { (x, y) };
    let swap = is_less(&z, &y);
    let (y, z) = if swap { (z, y) } else { (y, z) };
    let swap = is_less(&y, &x);
    let (x, y) = if swap { (y, x) } else { (x, y) };
    (v[a], v[b], v[c]) = (x, y, z);
}

/// The pivot: the median of the first, middle and last keys. Past [`NINTHER`] keys, each of
/// those three is itself the median of three neighbours first (Tukey's ninther, as pdqsort and
/// the standard library do), which balances partitions better and saved ~6% on 1M random keys.
fn median_of_three<T: Copy, F: FnMut(&T, &T) -> bool>(v: &mut [T], is_less: &mut F) -> T {
    let (m, last) = (v.len() / 2, v.len() - 1);
    if v.len() > NINTHER {
        sort3(v, 1, 0, 2, is_less);
        sort3(v, m - 1, m, m + 1, is_less);
        sort3(v, last - 2, last, last - 1, is_less);
    }
    sort3(v, 0, m, last, is_less);
    v[m]
}

/// Ranges longer than this choose their pivot by Tukey's ninther.
const NINTHER: usize = 128;

/// Moves the keys for which `goes_left` holds to the front and returns how many there are.
///
/// Block partition (Edelkamp & Weiß, BlockQuicksort): scan a block of [`BLOCK`] keys at each
/// end, write down the offsets of the misplaced ones with no branch on the comparison, then
/// swap misplaced pairs. A branchy Hoare scan mispredicts about half the time on random keys and
/// made this sort 3.6x slower than `sort_unstable` on 1M random keys. Keys already on their
/// side are never moved, so a sorted range stays sorted.
fn partition<T: Copy>(v: &mut [T], goes_left: &mut impl FnMut(&T) -> bool) -> usize {
    let (mut l, mut r) = (0usize, v.len());
    let mut offs_l = [0u8; BLOCK];
    let mut offs_r = [0u8; BLOCK];
    let (mut start_l, mut num_l, mut start_r, mut num_r) = (0usize, 0usize, 0usize, 0usize);
    // v[..l] go left and v[r..] go right; the blocks v[l..l+BLOCK] and v[r-BLOCK..r] hold the
    // `num_l` / `num_r` misplaced keys still listed in the offset arrays.
    while r - l >= 2 * BLOCK {
        if num_l == 0 {
            start_l = 0;
            for (i, x) in v[l..l + BLOCK].iter().enumerate() {
                offs_l[num_l] = i as u8;
                num_l += usize::from(!goes_left(x));
            }
        }
        if num_r == 0 {
            start_r = 0;
            for (i, x) in v[r - BLOCK..r].iter().rev().enumerate() {
                offs_r[num_r] = i as u8;
                num_r += usize::from(goes_left(x));
            }
        }
        let k = num_l.min(num_r);
        for (&a, &b) in offs_l[start_l..start_l + k]
            .iter()
            .zip(&offs_r[start_r..start_r + k])
        {
            v.swap(l + usize::from(a), r - 1 - usize::from(b));
        }
        (num_l, num_r, start_l, start_r) = (num_l - k, num_r - k, start_l + k, start_r + k);
        if num_l == 0 {
            l += BLOCK;
        }
        if num_r == 0 {
            r -= BLOCK;
        }
    }
    // Fewer than 2·BLOCK keys (some perhaps still misplaced) remain between l and r.
    l + partition_small(&mut v[l..r], goes_left)
}

/// Keys per block scanned by [`partition`]; offsets fit a `u8`.
const BLOCK: usize = 128;

/// Branch-free Lomuto for the last few keys: every step writes, and the boundary advances by
/// the predicate's result.
fn partition_small<T: Copy>(v: &mut [T], goes_left: &mut impl FnMut(&T) -> bool) -> usize {
    let mut boundary = 0;
    for i in 0..v.len() {
        let key = v[i];
        let left = goes_left(&key);
        v[i] = v[boundary];
        v[boundary] = key;
        boundary += usize::from(left);
    }
    boundary
}

/// Sorts a leaf of at most [`SMALL`] keys with Batcher's odd-even merge network for 16 slots.
///
/// Slots past the leaf's end behave as +infinity, so a comparator that touches one never swaps
/// and is skipped: the same network sorts every length up to 16. Each comparator is a
/// compare-and-select that compiles to conditional moves, so leaves cost no mispredictions (a
/// branchy insertion sort mispredicts once per key, ~30% of a random-input sort).
fn small_sort<T: Copy, F: FnMut(&T, &T) -> bool>(v: &mut [T], is_less: &mut F) {
    let n = v.len();
    for &(i, j) in NETWORK_16.iter() {
        let (i, j) = (usize::from(i), usize::from(j));
        if j < n {
            let (a, b) = (v[i], v[j]);
            let swap = is_less(&b, &a);
            v[i] = if swap { b } else { a };
            v[j] = if swap { a } else { b };
        }
    }
}

/// Batcher's odd-even merge sort network for 16 keys: 63 comparators, lower index first.
static NETWORK_16: [(u8, u8); 63] = batcher_16();

const fn batcher_16() -> [(u8, u8); 63] {
    let mut out = [(0u8, 0u8); 63];
    let mut len = 0;
    let n = 16;
    let mut p = 1;
    while p < n {
        let mut k = p;
        while k >= 1 {
            let mut j = k % p;
            while j + k < n {
                let mut i = 0;
                while i < k && i < n - j - k {
                    if (i + j) / (2 * p) == (i + j + k) / (2 * p) {
                        out[len] = ((i + j) as u8, (i + j + k) as u8);
                        len += 1;
                    }
                    i += 1;
                }
                j += 2 * k;
            }
            k /= 2;
        }
        p *= 2;
    }
    assert!(len == 63);
    out
}

/// Heapsort on a 4-ary max-heap, sifting bottom-up without data-dependent branches.
///
/// Large ranges are dominated by cache misses and mispredicted branches. A 4-ary heap halves the
/// levels a key passes and keeps a node's four children in one cache line; choosing the largest
/// child by arithmetic on comparison results, and walking the hole all the way to a leaf before
/// climbing back (Floyd), removes the unpredictable branches. On 1M random keys: binary
/// top-down 133 ms, this one is measured in `benches/benches/introsort.rs`.
fn heapsort<T: Copy, F: FnMut(&T, &T) -> bool>(v: &mut [T], is_less: &mut F) {
    let len = v.len();
    if len < 2 {
        return;
    }
    for start in (0..=(len - 2) / 4).rev() {
        let key = v[start];
        sift(v, start, len, key, is_less);
    }
    for end in (1..len).rev() {
        let key = v[end];
        v[end] = v[0];
        sift(v, 0, end, key, is_less);
    }
}

/// Places `key` into the heap v[start..end] whose slot `start` is free.
fn sift<T: Copy, F: FnMut(&T, &T) -> bool>(
    v: &mut [T],
    start: usize,
    end: usize,
    key: T,
    is_less: &mut F,
) {
    // Walk the hole down to a leaf, pulling up the largest child at each level.
    let mut hole = start;
    loop {
        let c = 4 * hole + 1;
        let big = if c + 3 < end {
            let a = c + usize::from(is_less(&v[c], &v[c + 1]));
            let b = c + 2 + usize::from(is_less(&v[c + 2], &v[c + 3]));
            if is_less(&v[a], &v[b]) { b } else { a }
        } else if c < end {
            let mut big = c;
            for child in c + 1..end {
                if is_less(&v[big], &v[child]) {
                    big = child;
                }
            }
            big
        } else {
            break;
        };
        v[hole] = v[big];
        hole = big;
    }
    // Climb back while the parent is smaller than the key; usually only a level or two.
    while hole > start {
        let parent = (hole - 1) / 4;
        if !is_less(&v[parent], &key) {
            break;
        }
        v[hole] = v[parent];
        hole = parent;
    }
    v[hole] = key;
}

#[cfg(test)]
mod tests;
