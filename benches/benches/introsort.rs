//! The index's introsort against `slice::sort_unstable`, 1M u64 keys, random and adversarial.

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use edgetls_certstore::sort::{introsort, introsort_by};
use edgetls_testkit::sort_patterns as patterns;
use std::time::Duration;

const N: usize = 1 << 20;

fn sorts(c: &mut Criterion) {
    let mut g = c.benchmark_group("sort_1m");
    g.sample_size(20)
        .measurement_time(Duration::from_secs(4))
        .warm_up_time(Duration::from_secs(1));
    let random = patterns::random(N, 0x5eed);
    g.bench_function("sort_unstable/random", |b| {
        b.iter_batched_ref(
            || random.clone(),
            |v| v.sort_unstable(),
            BatchSize::LargeInput,
        )
    });
    let inputs = [
        ("random", random.clone()),
        ("sorted", patterns::sorted(N)),
        ("reversed", patterns::reversed(N)),
        ("organ_pipe", patterns::organ_pipe(N)),
        ("all_equal", patterns::all_equal(N)),
        (
            "median_of_3_killer",
            patterns::median_of_3_killer(N, |v, less| introsort_by(v, less)),
        ),
    ];
    for (name, input) in inputs {
        g.bench_function(format!("introsort/{name}"), |b| {
            b.iter_batched_ref(|| input.clone(), |v| introsort(v), BatchSize::LargeInput)
        });
    }
    g.finish();
}

criterion_group!(benches, sorts);
criterion_main!(benches);
