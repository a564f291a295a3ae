//! Unit tests of `guard.rs`.

use super::*;

fn go(w: &mut Window, t: i64) {
    assert_eq!(w.check("ip", t, 5, 900), Admit::Go);
    w.start("ip");
}

#[test]
fn window_refuses_after_limit_and_forgets() {
    let mut w = Window::default();
    for t in 0..5 {
        go(&mut w, t);
        w.finish("ip", Outcome::Failed(t * 1000));
    }
    assert_eq!(w.check("ip", 10, 5, 900), Admit::Refuse(890));
    assert_eq!(w.check("other", 10, 5, 900), Admit::Go);
    assert_eq!(w.check("ip", 900, 5, 900), Admit::Go, "the oldest aged out");
}

#[test]
fn attempts_in_flight_hold_back_the_rest() {
    let mut w = Window::default();
    for _ in 0..5 {
        go(&mut w, 100);
    }
    assert_eq!(w.check("ip", 100, 5, 900), Admit::Wait);
    // One succeeds: room for one more. The rest fail: refused.
    w.finish("ip", Outcome::Succeeded);
    go(&mut w, 100);
    for _ in 0..5 {
        w.finish("ip", Outcome::Failed(100_000));
    }
    assert_eq!(w.check("ip", 101, 5, 900), Admit::Refuse(899));

    let mut b = Backoff::default();
    for _ in 0..5 {
        assert_eq!(b.check(b"a", 100_000, 5), Admit::Go);
        b.start(b"a");
    }
    assert_eq!(b.check(b"a", 100_000, 5), Admit::Wait);
    b.finish(b"a", Outcome::Aborted);
    assert_eq!(
        b.check(b"a", 100_000, 5),
        Admit::Go,
        "an aborted attempt is no failure"
    );
}

/// Issue 26: with whole seconds, a fifth failure at 10.999 s and a check at
/// 11.001 s were a second apart, so a parallel burst straddling the second
/// got a sixth password check 2 ms after the fifth. The wait is real now.
#[test]
fn backoff_waits_a_whole_second_across_a_second_boundary() {
    let mut b = Backoff::default();
    for _ in 0..5 {
        assert_eq!(b.check(b"a", 10_999, 5), Admit::Go);
        b.start(b"a");
        b.finish(b"a", Outcome::Failed(10_999));
    }
    assert_eq!(b.check(b"a", 11_001, 5), Admit::Refuse(1));
    assert_eq!(b.check(b"a", 11_998, 5), Admit::Refuse(1));
    assert_eq!(b.check(b"a", 11_999, 5), Admit::Go);
}

#[test]
fn backoff_doubles_and_resets() {
    let mut b = Backoff::default();
    let fail = |b: &mut Backoff, t: i64| {
        assert_eq!(b.check(b"a", t * 1000, 5), Admit::Go);
        b.start(b"a");
        b.finish(b"a", Outcome::Failed(t * 1000));
    };
    for _ in 0..5 {
        fail(&mut b, 100);
    }
    assert_eq!(b.check(b"a", 100_000, 5), Admit::Refuse(1));
    fail(&mut b, 101);
    assert_eq!(b.check(b"a", 101_000, 5), Admit::Refuse(2));
    fail(&mut b, 103);
    assert_eq!(b.check(b"a", 103_000, 5), Admit::Refuse(4));
    assert_eq!(b.check(b"a", 107_000, 5), Admit::Go);
    b.start(b"a");
    b.finish(b"a", Outcome::Succeeded);
    assert!(b.accounts.is_empty(), "a success clears the account");
    for _ in 0..10 {
        assert_eq!(b.check(b"z", 103_000, 0), Admit::Go, "0 turns it off");
        b.start(b"z");
    }
}

#[test]
fn sliding_window_hits_count_as_they_are_checked_and_can_be_given_back() {
    let w = SlidingWindow::default();
    for _ in 0..5 {
        w.hit("k", 100, 5, 300).unwrap();
    }
    assert!(matches!(
        w.hit("k", 101, 5, 300),
        Err(Error::RateLimited {
            retry_after_secs: 299
        })
    ));
    w.give_back("k", 100);
    w.hit("k", 102, 5, 300).unwrap();
    assert!(w.hit("k", 102, 5, 300).is_err());
    assert!(w.hit("k", 400, 5, 300).is_ok(), "the window moved on");
}

#[test]
fn an_address_that_signed_in_goes_first_until_it_fails() {
    let limits = Limits::default();
    assert!(!limits.priority("login:a", 100), "unknown");
    limits.remember_good("login:a", 100);
    assert!(limits.priority("login:a", 200));
    assert!(!limits.priority("login:b", 200));
    assert!(
        !limits.priority("login:a", 100 + KNOWN_GOOD_SECS),
        "forgotten after a day"
    );
    let auth = AuthConfig::default();
    assert_eq!(limits.admit("login:a", b"x", 300_000, &auth), Admit::Go);
    limits
        .lock()
        .login_ip
        .finish("login:a", Outcome::Failed(300_000));
    assert!(!limits.priority("login:a", 301), "a failure in the window");
}

#[test]
fn an_attempt_waiting_on_one_limiter_holds_no_place_in_the_other() {
    let limits = Limits::default();
    let auth = AuthConfig::default();
    // Five attempts on one account from one address, none finished.
    for _ in 0..5 {
        assert_eq!(limits.admit("a", b"acct", 100_000, &auth), Admit::Go);
    }
    assert_eq!(limits.admit("b", b"acct", 100_000, &auth), Admit::Wait);
    // The waiter from "b" took nothing: "b" still has its full limit.
    for _ in 0..5 {
        assert_eq!(limits.admit("b", b"other", 100_000, &auth), Admit::Go);
    }
    assert_eq!(limits.admit("b", b"third", 100_000, &auth), Admit::Wait);
}
