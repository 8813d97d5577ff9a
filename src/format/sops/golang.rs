//! Go's own number layouts, which sops output depends on byte for byte:
//! `strconv.FormatFloat` at the shortest precision, and the layout `encoding/json`
//! picks for a float. Every store that writes a float, and the bytes sops encrypts
//! and authenticates a float as, go through here.

/// The `fmt` byte of Go's `strconv.FormatFloat`.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Fmt {
    /// `'e'`: `-d.ddde±dd`.
    E,
    /// `'f'`: `-ddd.ddd`, never an exponent.
    F,
    /// `'g'`: `'e'` for an exponent below -4 or from 6 on, `'f'` otherwise.
    G,
    /// `'G'`: `'g'` with `E` for the exponent.
    UpperG,
}

/// Go's `strconv.FormatFloat(v, fmt, -1, 64)`: the fewest digits that read back as
/// `v`, laid out as `fmt` says.
pub(crate) fn format_float(v: f64, fmt: Fmt) -> String {
    if v.is_nan() {
        return "NaN".into();
    }
    if v.is_infinite() {
        return if v > 0.0 { "+Inf" } else { "-Inf" }.into();
    }
    let mut out = String::new();
    if v.is_sign_negative() {
        out.push('-');
    }
    let (digits, point) = shortest_digits(v);
    let all_after_point = (digits.len() as i32 - point).max(0) as usize;
    match fmt {
        Fmt::E => fmt_e(&mut out, &digits, point, 'e'),
        Fmt::F => fmt_f(&mut out, &digits, point, all_after_point),
        Fmt::G | Fmt::UpperG => {
            // At the shortest precision Go decides with a precision of 6.
            let exp = point - 1;
            if !(-4..6).contains(&exp) {
                fmt_e(
                    &mut out,
                    &digits,
                    point,
                    if fmt == Fmt::G { 'e' } else { 'E' },
                );
            } else {
                fmt_f(&mut out, &digits, point, all_after_point);
            }
        }
    }
    out
}

/// A float as Go's `encoding/json` writes it: `'f'`, or `'e'` below 1e-6 and from
/// 1e21 with `e-07` shortened to `e-7`.
pub(crate) fn json_float(v: f64) -> String {
    let abs = v.abs();
    if abs == 0.0 || (1e-6..1e21).contains(&abs) {
        return format_float(v, Fmt::F);
    }
    let mut out = format_float(v, Fmt::E);
    let n = out.len();
    let b = out.as_bytes();
    if n >= 4 && b[n - 4] == b'e' && b[n - 3] == b'-' && b[n - 2] == b'0' {
        out.remove(n - 2);
    }
    out
}

/// The shortest decimal digits that read back as `v` (finite), and the decimal
/// point position: `v = 0.DIGITS × 10^point`, as Go's `strconv` has them
/// (`digs.d`, `digs.dp`). Zero has no digits.
fn shortest_digits(v: f64) -> (Vec<u8>, i32) {
    if v == 0.0 {
        return (Vec::new(), 0);
    }
    // Rust's `{:e}` gives the shortest digits that round-trip, as Go's -1 does.
    let e = format!("{:e}", v.abs());
    let (mantissa, exp) = e.split_once('e').expect("LowerExp has an exponent");
    let exp: i32 = exp.parse().expect("LowerExp exponent is an integer");
    let digits = mantissa.bytes().filter(|b| *b != b'.').collect();
    (digits, exp + 1)
}

/// Go's `%f` layout of `digits`/`point` with `prec` digits after the point.
fn fmt_f(out: &mut String, digits: &[u8], point: i32, prec: usize) {
    if point > 0 {
        for i in 0..point as usize {
            out.push(*digits.get(i).unwrap_or(&b'0') as char);
        }
    } else {
        out.push('0');
    }
    if prec > 0 {
        out.push('.');
        for i in 1..=prec as i32 {
            let j = point + i - 1;
            let d = if j >= 0 {
                *digits.get(j as usize).unwrap_or(&b'0')
            } else {
                b'0'
            };
            out.push(d as char);
        }
    }
}

/// Go's `%e` layout with all of `digits` and an exponent of at least two digits.
fn fmt_e(out: &mut String, digits: &[u8], point: i32, e: char) {
    out.push(*digits.first().unwrap_or(&b'0') as char);
    if digits.len() > 1 {
        out.push('.');
        out.extend(digits[1..].iter().map(|d| *d as char));
    }
    out.push(e);
    let exp = if digits.is_empty() { 0 } else { point - 1 };
    out.push(if exp < 0 { '-' } else { '+' });
    let exp = exp.unsigned_abs();
    if exp < 10 {
        out.push('0');
    }
    out.push_str(&exp.to_string());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_float_matches_go() {
        let table: &[(f64, Fmt, &str)] = &[
            (0.0, Fmt::E, "0e+00"),
            (0.0, Fmt::F, "0"),
            (-0.0, Fmt::G, "-0"),
            (1.0, Fmt::E, "1e+00"),
            (-2.5e300, Fmt::E, "-2.5e+300"),
            (1.5e-7, Fmt::E, "1.5e-07"),
            (1e21, Fmt::F, "1000000000000000000000"),
            (1e-7, Fmt::F, "0.0000001"),
            (12345.678, Fmt::G, "12345.678"),
            (123456.0, Fmt::G, "123456"),
            (1e6, Fmt::G, "1e+06"),
            (1.5e-5, Fmt::G, "1.5e-05"),
            (0.0001, Fmt::G, "0.0001"),
            (1234567.0, Fmt::UpperG, "1.234567E+06"),
            (f64::NAN, Fmt::G, "NaN"),
            (f64::INFINITY, Fmt::F, "+Inf"),
            (f64::NEG_INFINITY, Fmt::E, "-Inf"),
        ];
        for (v, fmt, want) in table {
            assert_eq!(format_float(*v, *fmt), *want, "{v:e} {fmt:?}");
        }
    }

    #[test]
    fn json_float_matches_go() {
        let table: &[(f64, &str)] = &[
            (8080.0, "8080"),
            (0.5, "0.5"),
            (-0.0, "-0"),
            (0.0, "0"),
            (1e21, "1e+21"),
            (1.5e-7, "1.5e-7"),
            (1e-7, "1e-7"),
            (0.000001, "0.000001"),
            (1e20, "100000000000000000000"),
            (12345678901234567890.0, "12345678901234567000"),
            (1.2345e-10, "1.2345e-10"),
            (-2.5e300, "-2.5e+300"),
            (1234.56789, "1234.56789"),
        ];
        for (v, want) in table {
            assert_eq!(json_float(*v), *want, "{v:e}");
        }
    }
}
