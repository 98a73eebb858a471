//! The sieve of Eratosthenes as a chain of filter stages, one per prime, as
//! in Lua 5.4's `testes/coroutine.lua`: 22 primes up to 80, the last 79.
//! Stages are stackful, stackless (nightly), or mixed in one chain.
#![cfg_attr(cogen_nightly, feature(coroutines))]

use cogen::pipeline::{PipelineExt, PipelineItem, Stage};

// The stackless stages (their syntax does not parse on stable Rust).
#[cfg(cogen_nightly)]
#[path = "nightly/sieve.rs"]
mod stackless;

/// A chain of stages whose length is only known at run time.
type Numbers = Box<dyn Iterator<Item = PipelineItem<u64>>>;

#[derive(Clone, Copy, Debug)]
enum Kind {
    Stackful,
    #[cfg(cogen_nightly)]
    Stackless,
}

/// Lua's `gen(n)`: a generator coroutine for 2..=n.
fn generate(n: u64, kind: Kind) -> Numbers {
    match kind {
        Kind::Stackful => Box::new(Stage::new(
            "gen",
            cogen::generator(move |co| co.suspend_all(2..=n)),
        )),
        #[cfg(cogen_nightly)]
        Kind::Stackless => stackless::generate(n),
    }
}

/// Lua's `filter(p, g)`: passes on what is not a multiple of `p`.
fn filter(numbers: Numbers, p: u64, kind: Kind) -> Numbers {
    let name = format!("filter {p}");
    match kind {
        Kind::Stackful => Box::new(numbers.stage(name, move |co, up| {
            for n in up {
                if n % p != 0 {
                    co.suspend(n);
                }
            }
        })),
        #[cfg(cogen_nightly)]
        Kind::Stackless => stackless::filter(numbers, name, p),
    }
}

/// Runs the sieve; `kind(i)` chooses the kind of the `i`th filter.
fn sieve(n: u64, source: Kind, kind: impl Fn(usize) -> Kind) -> Vec<u64> {
    let mut numbers = generate(n, source);
    let mut primes = Vec::new();
    while let Some(p) = numbers.next() {
        let p = p.expect("no stage fails");
        numbers = filter(numbers, p, kind(primes.len()));
        primes.push(p);
    }
    primes
}

fn is_prime(n: u64) -> bool {
    n >= 2
        && (2..n)
            .take_while(|d| d * d <= n)
            .all(|d| !n.is_multiple_of(d))
}

fn check(primes: &[u64]) {
    assert_eq!(primes.len(), 22);
    assert_eq!(primes.last(), Some(&79));
    let expected: Vec<u64> = (2..=80).filter(|&n| is_prime(n)).collect();
    assert_eq!(primes, expected);
}

#[test]
fn sieve_of_stackful_stages() {
    check(&sieve(80, Kind::Stackful, |_| Kind::Stackful));
}

#[cfg(cogen_nightly)]
#[test]
fn sieve_of_stackless_stages() {
    check(&sieve(80, Kind::Stackless, |_| Kind::Stackless));
}

#[cfg(cogen_nightly)]
#[test]
fn sieve_of_mixed_stages() {
    let alternate = |i: usize| {
        if i.is_multiple_of(2) {
            Kind::Stackless
        } else {
            Kind::Stackful
        }
    };
    check(&sieve(80, Kind::Stackful, alternate));
    check(&sieve(80, Kind::Stackless, alternate));
}

#[test]
fn a_failing_filter_is_named_in_the_chain() {
    // Filter 7 gives up on 49: the error names it, and the chain ends there.
    let mut numbers = generate(80, Kind::Stackful);
    let mut primes = Vec::new();
    let error = loop {
        match numbers.next() {
            Some(Ok(p)) => {
                primes.push(p);
                numbers = if p == 7 {
                    Box::new(numbers.stage("filter 7", move |co, up| {
                        for n in up {
                            assert!(n != 49, "{n} is a square");
                            if n % 7 != 0 {
                                co.suspend(n);
                            }
                        }
                    }))
                } else {
                    filter(numbers, p, Kind::Stackful)
                };
            }
            Some(Err(error)) => break error,
            None => panic!("the failure was lost"),
        }
    };
    assert_eq!(
        primes,
        [2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37, 41, 43, 47]
    );
    assert_eq!(error.stage(), "filter 7");
    assert_eq!(error.panic().unwrap().message(), "49 is a square");
    assert!(numbers.next().is_none());
}
