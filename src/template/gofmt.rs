//! Go-compatible number formatting: `strconv.FormatFloat` for the `e`, `f` and
//! `g` formats and the parts of `fmt` that templates reach (`%v`, `printf`).
//!
//! Rust has no `%g`, and its `{}` prints `inf`/`NaN` where Go prints `+Inf`/`NaN`.
//! Digit generation is delegated to Rust's exact formatter (`{:.Ne}`), which
//! rounds the exact binary value half-to-even like Go's `strconv`; the layout
//! decisions (when `%g` switches to an exponent, how exponents look) follow
//! Go's `strconv/ftoa.go` (`formatDigits`, `fmtE`, `fmtF`).

/// Decimal digits of |v| without trailing zeros, with the decimal point position:
/// the value is `0.d1d2d3... * 10^dp`. Zero has no digits and `dp == 0`.
struct Digits {
    d: Vec<u8>,
    dp: i32,
}

/// Digits of a finite |v|, shortest round-trip (`sig == None`) or rounded to `sig` significant digits.
fn digits(v: f64, sig: Option<usize>) -> Digits {
    let a = v.abs();
    if a == 0.0 {
        return Digits { d: Vec::new(), dp: 0 };
    }
    let s = match sig {
        None => format!("{a:e}"),
        Some(n) => format!("{:.*e}", n.max(1) - 1, a),
    };
    let (mant, exp) = s.split_once('e').unwrap_or((s.as_str(), "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let mut d: Vec<u8> = mant.bytes().filter(u8::is_ascii_digit).collect();
    while d.last() == Some(&b'0') {
        d.pop();
    }
    if d.is_empty() {
        return Digits { d, dp: 0 };
    }
    Digits { d, dp: exp + 1 }
}

fn special(v: f64) -> Option<&'static str> {
    if v.is_nan() {
        Some("NaN")
    } else if v == f64::INFINITY {
        Some("+Inf")
    } else if v == f64::NEG_INFINITY {
        Some("-Inf")
    } else {
        None
    }
}

/// Go's `fmtE`: `d.ddddde±XX` with `prec` digits after the point.
fn fmt_e(out: &mut String, dg: &Digits, prec: usize, upper: bool) {
    out.push(dg.d.first().map_or('0', |&c| c as char));
    if prec > 0 {
        out.push('.');
        for i in 1..=prec {
            out.push(dg.d.get(i).map_or('0', |&c| c as char));
        }
    }
    out.push(if upper { 'E' } else { 'e' });
    let exp = if dg.d.is_empty() { 0 } else { dg.dp - 1 };
    out.push(if exp < 0 { '-' } else { '+' });
    let e = exp.unsigned_abs();
    if e < 10 {
        out.push('0');
    }
    out.push_str(&e.to_string());
}

/// Go's `fmtF`: integer part, then `prec` digits after the point.
fn fmt_f(out: &mut String, dg: &Digits, prec: usize) {
    if dg.dp > 0 {
        let dp = dg.dp as usize;
        for i in 0..dp {
            out.push(dg.d.get(i).map_or('0', |&c| c as char));
        }
    } else {
        out.push('0');
    }
    if prec > 0 {
        out.push('.');
        for i in 1..=prec as i64 {
            let j = dg.dp as i64 + i - 1;
            let c = if j >= 0 { dg.d.get(j as usize).map_or('0', |&c| c as char) } else { '0' };
            out.push(c);
        }
    }
}

/// Go's `strconv.FormatFloat(v, 'g', prec, 64)` (with `prec == None` for -1),
/// except that infinities carry a sign as in `fmt` (`+Inf`).
pub(crate) fn format_g(v: f64, prec: Option<usize>) -> String {
    if let Some(s) = special(v) {
        return s.to_string();
    }
    let mut out = String::new();
    if v.is_sign_negative() && v != 0.0 {
        out.push('-');
    }
    let shortest = prec.is_none();
    let p = prec.map(|p| p.max(1));
    let dg = digits(v, p);
    let nd = dg.d.len() as i64;
    let dp = dg.dp as i64;
    let mut prec = p.map_or(nd, |p| p as i64);
    let mut eprec = prec;
    if eprec > nd && nd >= dp {
        eprec = nd;
    }
    if shortest {
        eprec = 6;
    }
    let exp = dp - 1;
    if exp < -4 || exp >= eprec {
        if prec > nd {
            prec = nd;
        }
        fmt_e(&mut out, &dg, (prec - 1).max(0) as usize, false);
        return out;
    }
    if prec > dp {
        prec = nd;
    }
    fmt_f(&mut out, &dg, (prec - dp).max(0) as usize);
    out
}

/// Go's `%e` with `prec` digits after the point (default 6).
pub(crate) fn format_e(v: f64, prec: usize, upper: bool) -> String {
    if let Some(s) = special(v) {
        return s.to_string();
    }
    let mut out = String::new();
    if v.is_sign_negative() && v != 0.0 {
        out.push('-');
    }
    let dg = digits(v, Some(prec + 1));
    fmt_e(&mut out, &dg, prec, upper);
    out
}

/// Go's `%f` with `prec` digits after the point (default 6).
pub(crate) fn format_f(v: f64, prec: usize) -> String {
    if let Some(s) = special(v) {
        return s.to_string();
    }
    // Rust's fixed formatting rounds the exact value half-to-even, as Go does.
    let s = format!("{:.*}", prec, v.abs());
    if v.is_sign_negative() && v != 0.0 {
        format!("-{s}")
    } else {
        s
    }
}

/// Go's `%v` for a float64: `%g` with the shortest representation.
pub(crate) fn format_v(v: f64) -> String {
    format_g(v, None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn g_shortest_like_go_fmt_v() {
        // Expected values are what Go's fmt.Sprint(float64) prints.
        let cases = [
            (0.0, "0"),
            (1.0, "1"),
            (1.5, "1.5"),
            (123456.0, "123456"),
            (1e6, "1e+06"),
            (1234567.0, "1.234567e+06"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (-2.5e-7, "-2.5e-07"),
            (1e21, "1e+21"),
            (0.1 + 0.2, "0.30000000000000004"),
            (f64::INFINITY, "+Inf"),
            (f64::NEG_INFINITY, "-Inf"),
            (f64::NAN, "NaN"),
        ];
        for (v, want) in cases {
            assert_eq!(format_v(v), want, "{v}");
        }
    }

    #[test]
    fn g_with_precision_4_like_go() {
        // fmt.Sprintf("%.4g", v) in Go.
        let cases = [
            (0.0, "0"),
            (1.0, "1"),
            (1234.0, "1234"),
            (12345.0, "1.234e+04"),
            (12355.0, "1.236e+04"),
            (100000.0, "1e+05"),
            (1.2345, "1.234"),
            (1.23456, "1.235"),
            (999.94, "999.9"),
            (999.96, "1000"),
            (0.000123456, "0.0001235"),
            (0.0000123, "1.23e-05"),
            (-42.0, "-42"),
            (5.5, "5.5"),
        ];
        for (v, want) in cases {
            assert_eq!(format_g(v, Some(4)), want, "{v}");
        }
    }

    #[test]
    fn e_and_f() {
        assert_eq!(format_e(1234.5678, 2, false), "1.23e+03");
        assert_eq!(format_e(0.0, 6, false), "0.000000e+00");
        assert_eq!(format_e(1e-10, 1, true), "1.0E-10");
        assert_eq!(format_f(0.125, 2), "0.12");
        assert_eq!(format_f(-1.5, 0), "-2");
        assert_eq!(format_f(2.0 / 3.0, 6), "0.666667");
    }
}
