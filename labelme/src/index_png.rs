//! Fast PNG encoding of class-index masks.
//!
//! A defect mask is a few megabytes of zeros with some small blobs. General-purpose
//! encoders filter and compress every byte (the `png` crate's fastest setting spends about
//! half a millisecond on a 2000×2000 mask, a third of a whole `convert`), yet such a mask is
//! just a list of runs. So the image data here is deflated as runs: each run of equal bytes
//! becomes one literal and back-references of distance 1 in a single fixed-Huffman block,
//! and its share of the Adler-32 checksum is computed in closed form. Rows outside the
//! range a caller says were painted are known to be zeros and cost nothing but their
//! run's length codes. The container (signature, IHDR, PLTE, CRCs, IEND) is written by
//! the `png` crate; any PNG decoder reads the result (the tests decode it with the `png`
//! crate, `bench/convert.sh` with Pillow).

use std::io::Write;
use std::ops::Range;

use crate::dataset::{voc_colormap, MaskEncoding};

/// PNG bytes of a `width × height` 8-bit index mask (P mode with the VOC palette, or L
/// mode). Rows outside `painted` must be all zeros; they are not read.
pub fn encode_index_png(
    width: u32,
    height: u32,
    data: &[u8],
    painted: Range<u32>,
    encoding: MaskEncoding,
) -> std::io::Result<Vec<u8>> {
    let w = width as usize;
    assert_eq!(data.len(), w * height as usize, "mask buffer size");
    assert!(
        painted.start <= painted.end && painted.end <= height,
        "row range"
    );
    let mut z = RleZlib::new();
    // Each scanline is its filter byte (0: none) and the row; zero rows merge into one run.
    z.run(0, (w + 1) * painted.start as usize);
    for y in painted.clone() {
        let row = &data[y as usize * w..(y as usize + 1) * w];
        z.run(0, 1);
        let mut x = 0;
        while x < w {
            let v = row[x];
            let start = x;
            if v == 0 {
                // zeros eight at a time: most of a painted row is still background
                while x + 8 <= w && u64::from_ne_bytes(row[x..x + 8].try_into().expect("8")) == 0 {
                    x += 8;
                }
            }
            while x < w && row[x] == v {
                x += 1;
            }
            z.run(v, x - start);
        }
    }
    z.run(0, (w + 1) * (height - painted.end) as usize);
    let zlib = z.finish();

    let mut out = Vec::with_capacity(zlib.len() + 1024);
    {
        let mut enc = png::Encoder::new(&mut out, width, height);
        enc.set_depth(png::BitDepth::Eight);
        match encoding {
            MaskEncoding::Palette => {
                enc.set_color(png::ColorType::Indexed);
                enc.set_palette(
                    voc_colormap()
                        .iter()
                        .flatten()
                        .copied()
                        .collect::<Vec<u8>>(),
                );
            }
            MaskEncoding::Gray => enc.set_color(png::ColorType::Grayscale),
        }
        let mut writer = enc.write_header().map_err(std::io::Error::other)?;
        // one IDAT chunk as long as a chunk may be, then the rest
        for part in zlib.chunks(i32::MAX as usize) {
            writer
                .write_chunk(png::chunk::IDAT, part)
                .map_err(std::io::Error::other)?;
        }
        writer.finish().map_err(std::io::Error::other)?;
    }
    out.flush()?;
    Ok(out)
}

const ADLER_MOD: u64 = 65521;

/// A zlib stream of one fixed-Huffman deflate block that encodes runs of bytes.
struct RleZlib {
    out: Vec<u8>,
    bits: u64,
    nbits: u32,
    /// The run not yet written: (byte, length).
    pending: Option<(u8, usize)>,
    /// The last byte written (what a distance-1 reference repeats).
    last: Option<u8>,
    adler_a: u64,
    adler_b: u64,
}

impl RleZlib {
    fn new() -> Self {
        let mut z = RleZlib {
            // CMF 0x78 (deflate, 32 KiB window), FLG 0x01 (fastest; header % 31 == 0)
            out: vec![0x78, 0x01],
            bits: 0,
            nbits: 0,
            pending: None,
            last: None,
            adler_a: 1,
            adler_b: 0,
        };
        z.put(1, 1); // BFINAL
        z.put(1, 2); // BTYPE = 01, fixed Huffman codes
        z
    }

    /// Append `n` copies of `v` to the uncompressed stream.
    fn run(&mut self, v: u8, n: usize) {
        if n == 0 {
            return;
        }
        match &mut self.pending {
            Some((pv, pn)) if *pv == v => *pn += n,
            _ => {
                if let Some((pv, pn)) = self.pending.take() {
                    self.emit(pv, pn);
                }
                self.pending = Some((v, n));
            }
        }
    }

    fn emit(&mut self, v: u8, mut n: usize) {
        // Adler-32 of n copies of v: a grows by n·v, b by n·a + v·n(n+1)/2.
        let nm = (n as u64) % ADLER_MOD;
        let tri = ((n as u128 * (n as u128 + 1) / 2) % ADLER_MOD as u128) as u64;
        self.adler_b = (self.adler_b + nm * self.adler_a + v as u64 * tri) % ADLER_MOD;
        self.adler_a = (self.adler_a + nm * v as u64) % ADLER_MOD;

        if self.last != Some(v) {
            self.literal(v);
            self.last = Some(v);
            n -= 1;
        }
        if n > 260 {
            // the bulk of a background run: (258, distance 1) over and over, 13 bits each,
            // written two at a time
            let k = (n - 3) / 258;
            let one = (0xC5u32.reverse_bits() >> 24) as u64; // symbol 285; distance code 0
            let two = one | (one << 13);
            for _ in 0..k / 2 {
                self.put(two as u32, 26);
            }
            if k % 2 == 1 {
                self.put(one as u32, 13);
            }
            n -= k * 258;
        }
        while n >= 3 {
            // lengths are 3..=258; never leave a remainder of 1 or 2 after a long run
            let m = match n {
                0..=258 => n,
                259..=260 => n - 3,
                _ => 258,
            };
            self.back_reference(m);
            n -= m;
        }
        for _ in 0..n {
            self.literal(v);
        }
    }

    /// Write the low `n` bits of `value`, least significant first.
    fn put(&mut self, value: u32, n: u32) {
        self.bits |= (value as u64) << self.nbits;
        self.nbits += n;
        if self.nbits >= 32 {
            self.out
                .extend_from_slice(&(self.bits as u32).to_le_bytes());
            self.bits >>= 32;
            self.nbits -= 32;
        }
    }

    /// Write a Huffman code (sent most significant bit first).
    fn code(&mut self, code: u32, len: u32) {
        self.put(code.reverse_bits() >> (32 - len), len);
    }

    fn literal(&mut self, v: u8) {
        match v {
            0..=143 => self.code(0x30 + v as u32, 8),
            _ => self.code(0x190 + (v as u32 - 144), 9),
        }
    }

    /// A length symbol (3..=258) followed by distance 1.
    fn back_reference(&mut self, len: usize) {
        let (sym, extra_bits, base) = length_symbol(len);
        match sym {
            256..=279 => self.code(sym - 256, 7),
            _ => self.code(0xC0 + (sym - 280), 8),
        }
        if extra_bits > 0 {
            self.put((len as u32) - base, extra_bits);
        }
        self.code(0, 5); // distance code 0 = distance 1
    }

    fn finish(mut self) -> Vec<u8> {
        if let Some((v, n)) = self.pending.take() {
            self.emit(v, n);
        }
        self.code(0, 7); // end of block (256)
        while self.nbits > 0 {
            self.out.push(self.bits as u8);
            self.bits >>= 8;
            self.nbits = self.nbits.saturating_sub(8);
        }
        let adler = ((self.adler_b << 16) | self.adler_a) as u32;
        self.out.extend_from_slice(&adler.to_be_bytes());
        self.out
    }
}

/// Deflate's length symbol for a match length: (symbol, extra bits, base length).
fn length_symbol(len: usize) -> (u32, u32, u32) {
    debug_assert!((3..=258).contains(&len));
    let len = len as u32;
    if len == 258 {
        return (285, 0, 258);
    }
    if len <= 10 {
        return (257 + len - 3, 0, len);
    }
    // symbols 265.. come in groups of four per number of extra bits (1..=5)
    let mut base = 11;
    let mut sym = 265;
    for extra in 1..=5u32 {
        let span = 1 << extra;
        if len < base + 4 * span {
            let k = (len - base) / span;
            return (sym + k, extra, base + k * span);
        }
        base += 4 * span;
        sym += 4;
    }
    unreachable!("length {len} out of range")
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    fn decode(png_bytes: &[u8]) -> (u32, u32, png::ColorType, Vec<u8>) {
        let mut dec = png::Decoder::new(std::io::Cursor::new(png_bytes));
        dec.set_transformations(png::Transformations::IDENTITY);
        let mut reader = dec.read_info().expect("header");
        let mut buf = vec![0; reader.output_buffer_size()];
        let info = reader.next_frame(&mut buf).expect("image data");
        buf.truncate(info.buffer_size());
        (info.width, info.height, info.color_type, buf)
    }

    #[test]
    fn length_symbols_follow_rfc_1951() {
        assert_eq!(length_symbol(3), (257, 0, 3));
        assert_eq!(length_symbol(10), (264, 0, 10));
        assert_eq!(length_symbol(11), (265, 1, 11));
        assert_eq!(length_symbol(12), (265, 1, 11));
        assert_eq!(length_symbol(13), (266, 1, 13));
        assert_eq!(length_symbol(19), (269, 2, 19));
        assert_eq!(length_symbol(34), (272, 2, 31));
        assert_eq!(length_symbol(35), (273, 3, 35));
        assert_eq!(length_symbol(130), (280, 4, 115));
        assert_eq!(length_symbol(131), (281, 5, 131));
        assert_eq!(length_symbol(257), (284, 5, 227));
        assert_eq!(length_symbol(258), (285, 0, 258));
    }

    /// Random masks of every kind (empty, noise, blobs, long runs of every value, widths
    /// around the 258-byte match limit) decode to the same indices, in both encodings.
    #[test]
    fn random_masks_round_trip_through_a_png_decoder() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(11);
        for case in 0..400 {
            let w =
                [1, 2, 7, 255, 256, 257, 258, 259, 260, 517][case % 10] + rng.gen_range(0..3u32);
            let h = rng.gen_range(1..40u32);
            let mut m = vec![0u8; (w * h) as usize];
            let (top, bottom) = {
                let a = rng.gen_range(0..=h);
                let b = rng.gen_range(0..=h);
                (a.min(b), a.max(b))
            };
            let style = case % 4;
            for y in top..bottom {
                for x in 0..w {
                    let i = (y * w + x) as usize;
                    m[i] = match style {
                        0 => rng.gen_range(0..=255),
                        1 if rng.gen_bool(0.05) => [1, 2, 255, 144, 143][rng.gen_range(0..5)],
                        2 => ((x / 37 + y) % 3) as u8 * 100,
                        _ => m[i],
                    };
                }
            }
            for encoding in [MaskEncoding::Palette, MaskEncoding::Gray] {
                let bytes = encode_index_png(w, h, &m, top..bottom, encoding).unwrap();
                let (dw, dh, color, data) = decode(&bytes);
                assert_eq!((dw, dh), (w, h), "case {case}");
                let want = match encoding {
                    MaskEncoding::Palette => png::ColorType::Indexed,
                    MaskEncoding::Gray => png::ColorType::Grayscale,
                };
                assert_eq!(color, want);
                assert!(data == m, "case {case}: {w}x{h} rows {top}..{bottom}");
            }
        }
    }

    #[test]
    fn writes_what_read_index_png_reads_with_the_voc_palette() {
        let dir = tempfile::tempdir().unwrap();
        let (w, h) = (300u32, 5u32);
        let mut m = vec![0u8; (w * h) as usize];
        m[(2 * w + 10) as usize..(2 * w + 290) as usize].fill(3);
        m[(3 * w) as usize] = 255;
        let path = dir.path().join("m.png");
        std::fs::write(
            &path,
            encode_index_png(w, h, &m, 2..4, MaskEncoding::Palette).unwrap(),
        )
        .unwrap();
        let back = crate::dataset::read_index_png(&path).unwrap();
        assert_eq!(back.data, m);
        // the palette is labelme's: class 3 is (128, 128, 0)
        let decoded = image::open(&path).unwrap().to_rgb8();
        assert_eq!(decoded.get_pixel(10, 2).0, [128, 128, 0]);
    }
}
