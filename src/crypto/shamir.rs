//! Shamir secret sharing of a sops data key, in the form sops writes its key
//! groups' shares: arithmetic in GF(2^8) with the AES polynomial
//! x^8 + x^4 + x^3 + x + 1, one random polynomial per secret byte whose constant
//! term is that byte, and each share the polynomial values for every byte followed
//! by one byte, its x-coordinate (1 for the first group, 2 for the second, …).

use zeroize::Zeroizing;

/// The product of `a` and `b` in GF(2^8), in constant time.
fn mul(a: u8, b: u8) -> u8 {
    let mut acc = 0u8;
    for i in (0..8).rev() {
        let bit = (b >> i) & 1;
        let reduce = 0u8.wrapping_sub(acc >> 7) & 0x1b;
        acc = (0u8.wrapping_sub(bit) & a) ^ reduce ^ acc.wrapping_shl(1);
    }
    acc
}

/// The multiplicative inverse of a non-zero `a`: a^254.
fn inverse(a: u8) -> u8 {
    let mut out = 1u8;
    let mut base = a;
    let mut e = 254u8;
    while e > 0 {
        if e & 1 == 1 {
            out = mul(out, base);
        }
        base = mul(base, base);
        e >>= 1;
    }
    out
}

/// Why shares cannot be combined.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refused {
    TooFew,
    Lengths,
    DuplicateX,
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Refused::TooFew => "fewer than two key-group shares",
            Refused::Lengths => "key-group shares of different lengths",
            Refused::DuplicateX => "two key-group shares with the same x-coordinate",
        })
    }
}

/// Splits `secret` into `parts` shares, any `threshold` of which give it back.
/// `2 <= threshold <= parts <= 255` and a non-empty secret are the caller's to ensure.
pub fn split(secret: &[u8], parts: usize, threshold: usize) -> Vec<Zeroizing<Vec<u8>>> {
    assert!((2..=parts).contains(&threshold) && parts <= 255 && !secret.is_empty());
    let mut shares: Vec<Zeroizing<Vec<u8>>> = (1..=parts)
        .map(|x| {
            let mut s = Zeroizing::new(vec![0u8; secret.len() + 1]);
            s[secret.len()] = x as u8;
            s
        })
        .collect();
    let mut coefficients = Zeroizing::new(vec![0u8; threshold]);
    for (i, &byte) in secret.iter().enumerate() {
        coefficients[0] = byte;
        fill_random(&mut coefficients[1..]);
        for share in shares.iter_mut() {
            let x = share[secret.len()];
            // Horner's rule from the highest coefficient down.
            share[i] = coefficients
                .iter()
                .rev()
                .fold(0u8, |acc, &c| mul(acc, x) ^ c);
        }
    }
    shares
}

fn fill_random(out: &mut [u8]) {
    use aes_gcm::aead::rand_core::RngCore;
    aes_gcm::aead::OsRng.fill_bytes(out);
}

/// The secret that `shares` (each value bytes then its x-coordinate) were split
/// from, by Lagrange interpolation at x = 0. Too few shares give a wrong secret,
/// which the data key's MAC then refuses.
pub fn combine(shares: &[&[u8]]) -> Result<Zeroizing<Vec<u8>>, Refused> {
    if shares.len() < 2 {
        return Err(Refused::TooFew);
    }
    let len = shares[0].len();
    if len < 2 || shares.iter().any(|s| s.len() != len) {
        return Err(Refused::Lengths);
    }
    let xs: Vec<u8> = shares.iter().map(|s| s[len - 1]).collect();
    for (i, x) in xs.iter().enumerate() {
        if xs[..i].contains(x) {
            return Err(Refused::DuplicateX);
        }
    }
    // The Lagrange basis at 0 for each share: the product over the others of
    // x_j / (x_i + x_j) (subtraction is addition in GF(2^8)).
    let basis: Vec<u8> = xs
        .iter()
        .enumerate()
        .map(|(i, &xi)| {
            xs.iter()
                .enumerate()
                .filter(|(j, _)| *j != i)
                .fold(1u8, |b, (_, &xj)| mul(b, mul(xj, inverse(xi ^ xj))))
        })
        .collect();
    let mut secret = Zeroizing::new(vec![0u8; len - 1]);
    for (k, byte) in secret.iter_mut().enumerate() {
        *byte = shares
            .iter()
            .zip(&basis)
            .fold(0u8, |acc, (s, &b)| acc ^ mul(s[k], b));
    }
    Ok(secret)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_arithmetic_is_the_aes_field() {
        // FIPS-197's worked example: {57} x {83} = {c1}.
        assert_eq!(mul(0x57, 0x83), 0xc1);
        assert_eq!(mul(0x57, 0x13), 0xfe);
        for a in 1..=255u8 {
            assert_eq!(mul(a, inverse(a)), 1, "{a}");
            assert_eq!(mul(a, 1), a);
            assert_eq!(mul(a, 0), 0);
        }
    }

    #[test]
    fn any_threshold_of_the_shares_give_the_secret_back() {
        let secret: Vec<u8> = (0..32).map(|i| (i * 37 + 11) as u8).collect();
        for (parts, threshold) in [(2, 2), (3, 2), (3, 3), (5, 3)] {
            let shares = split(&secret, parts, threshold);
            assert!(shares.iter().all(|s| s.len() == 33));
            let xs: Vec<u8> = shares.iter().map(|s| s[32]).collect();
            assert_eq!(xs, (1..=parts as u8).collect::<Vec<_>>());
            // Every subset of `threshold` shares, in any order.
            for mask in 0u32..(1 << parts) {
                if mask.count_ones() as usize != threshold {
                    continue;
                }
                let mut picked: Vec<&[u8]> = (0..parts)
                    .filter(|i| mask & (1 << i) != 0)
                    .map(|i| shares[i].as_slice())
                    .collect();
                assert_eq!(combine(&picked).unwrap().as_slice(), secret.as_slice());
                picked.reverse();
                assert_eq!(combine(&picked).unwrap().as_slice(), secret.as_slice());
            }
            if threshold > 2 {
                let few: Vec<&[u8]> = shares[..threshold - 1]
                    .iter()
                    .map(|s| s.as_slice())
                    .collect();
                assert_ne!(combine(&few).unwrap().as_slice(), secret.as_slice());
            }
        }
    }

    #[test]
    fn malformed_shares_are_refused() {
        let shares = split(&[1, 2, 3], 3, 2);
        let (a, b) = (shares[0].as_slice(), shares[1].as_slice());
        assert_eq!(combine(&[a]), Err(Refused::TooFew));
        assert_eq!(combine(&[a, &b[1..]]), Err(Refused::Lengths));
        assert_eq!(combine(&[a, a]), Err(Refused::DuplicateX));
        assert_eq!(combine(&[&[1], &[2]]), Err(Refused::Lengths));
    }
}
