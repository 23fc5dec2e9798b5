//! Images for paper and cameras: QR codes and whole share sheets as grayscale PNGs (text in
//! 8x8 glyphs above the QR code), so a printed PNG alone is enough.

use anyhow::{anyhow, Context, Result};
use zeroize::Zeroizing;

/// The QR code of `payload` as a grayscale PNG: 6 pixels a module, 4 modules of quiet zone.
pub fn qr_png(payload: &str) -> Result<Zeroizing<Vec<u8>>> {
    let (side, pixels) = qr_pixels(payload)?;
    encode_gray(side, side, &pixels, "the QR code PNG")
}

/// Modules drawn this many pixels wide, with this many modules of quiet zone around.
const QR_SCALE: usize = 6;
const QR_QUIET: usize = 4;

/// The QR code of `payload` as a square grayscale bitmap: `(side, pixels)`.
fn qr_pixels(payload: &str) -> Result<(usize, Zeroizing<Vec<u8>>)> {
    let code = qrcode::QrCode::with_error_correction_level(payload, qrcode::EcLevel::M)
        .map_err(|e| anyhow!("the data does not fit in a QR code: {e}"))?;
    let w = code.width();
    let colors = code.to_colors();
    let side = (w + 2 * QR_QUIET) * QR_SCALE;
    let mut pixels = Zeroizing::new(vec![255u8; side * side]);
    for (i, c) in colors.iter().enumerate() {
        if *c == qrcode::Color::Dark {
            let (mx, my) = (i % w + QR_QUIET, i / w + QR_QUIET);
            for dy in 0..QR_SCALE {
                let row = (my * QR_SCALE + dy) * side;
                pixels[row + mx * QR_SCALE..row + mx * QR_SCALE + QR_SCALE].fill(0);
            }
        }
    }
    Ok((side, pixels))
}

/// Text glyphs: 8x8 cells drawn this many times larger, lines this far apart, this margin.
const TEXT_SCALE: usize = 2;
const LINE_HEIGHT: usize = 8 * TEXT_SCALE + 6;
const SHEET_MARGIN: usize = 24;

/// A whole share sheet as one image, for holders who print PNGs: `lines` of text above the
/// QR code of `payload`. Characters outside ASCII are drawn as `?`.
pub fn sheet_png(lines: &[&str], payload: &str) -> Result<Zeroizing<Vec<u8>>> {
    let (qr_side, qr) = qr_pixels(payload)?;
    let columns = lines.iter().map(|l| l.chars().count()).max().unwrap_or(0);
    let width = (columns * 8 * TEXT_SCALE + 2 * SHEET_MARGIN).max(qr_side);
    let text_height = SHEET_MARGIN + lines.len() * LINE_HEIGHT;
    let height = text_height + qr_side;
    let mut pixels = Zeroizing::new(vec![255u8; width * height]);
    let glyphs = &font8x8::legacy::BASIC_LEGACY;
    for (n, line) in lines.iter().enumerate() {
        let top = SHEET_MARGIN + n * LINE_HEIGHT;
        for (i, c) in line.chars().enumerate() {
            let code = if c.is_ascii() {
                c as usize
            } else {
                '?' as usize
            };
            let glyph = glyphs.get(code).copied().unwrap_or([0; 8]);
            for (row, bits) in glyph.iter().enumerate() {
                for col in 0..8 {
                    if (bits >> col) & 1 == 0 {
                        continue;
                    }
                    let x = SHEET_MARGIN + (i * 8 + col) * TEXT_SCALE;
                    let y = top + row * TEXT_SCALE;
                    for dy in 0..TEXT_SCALE {
                        let at = (y + dy) * width + x;
                        pixels[at..at + TEXT_SCALE].fill(0);
                    }
                }
            }
        }
    }
    let left = (width - qr_side) / 2;
    for y in 0..qr_side {
        let at = (text_height + y) * width + left;
        pixels[at..at + qr_side].copy_from_slice(&qr[y * qr_side..(y + 1) * qr_side]);
    }
    encode_gray(width, height, &pixels, "the share sheet PNG")
}

/// `line` cut at spaces into pieces of at most `width` characters (a longer word stays whole).
pub fn wrap(line: &str, width: usize) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = line;
    while rest.chars().count() > width {
        let spaces = || {
            rest.char_indices()
                .filter(|(_, c)| *c == ' ')
                .map(|(i, _)| i)
        };
        let cut = spaces()
            .take_while(|i| *i <= width)
            .last()
            .or_else(|| spaces().next());
        let Some(cut) = cut.filter(|c| *c > 0) else {
            break;
        };
        out.push(&rest[..cut]);
        rest = rest[cut..].trim_start();
    }
    out.push(rest);
    out
}

fn encode_gray(
    width: usize,
    height: usize,
    pixels: &[u8],
    what: &str,
) -> Result<Zeroizing<Vec<u8>>> {
    let w = u32::try_from(width).map_err(|_| anyhow!("{what} is too large"))?;
    let h = u32::try_from(height).map_err(|_| anyhow!("{what} is too large"))?;
    let mut out = Zeroizing::new(Vec::new());
    {
        let mut enc = png::Encoder::new(&mut *out, w, h);
        enc.set_color(png::ColorType::Grayscale);
        enc.set_depth(png::BitDepth::Eight);
        let mut writer = enc
            .write_header()
            .with_context(|| format!("encoding {what}"))?;
        writer
            .write_image_data(pixels)
            .with_context(|| format!("encoding {what}"))?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(png_bytes: &[u8]) -> (usize, usize, Vec<u8>) {
        let mut reader = png::Decoder::new(png_bytes).read_info().unwrap();
        let mut buf = vec![0; reader.output_buffer_size()];
        let info = reader.next_frame(&mut buf).unwrap();
        assert_eq!(info.color_type, png::ColorType::Grayscale);
        buf.truncate(info.buffer_size());
        (info.width as usize, info.height as usize, buf)
    }

    #[test]
    fn the_sheet_png_draws_the_text_above_the_qr_code() {
        let payload = "TUFSHARE1:ABCDEFGH";
        let (qr_side, _) = qr_pixels(payload).unwrap();
        let lines = ["AB", "", "share 1 of 5 - 3 needed"];
        let (w, h, px) = decode(&sheet_png(&lines, payload).unwrap());
        let text_height = SHEET_MARGIN + lines.len() * LINE_HEIGHT;
        assert_eq!(h, text_height + qr_side);
        assert!(w >= qr_side && w >= 23 * 16 + 2 * SHEET_MARGIN);
        // 'A' and 'B' are drawn exactly as their glyphs, pixel for pixel.
        for (i, c) in ['A', 'B'].into_iter().enumerate() {
            let glyph = font8x8::legacy::BASIC_LEGACY[c as usize];
            for (row, bits) in glyph.iter().enumerate() {
                for col in 0..8 {
                    let x = SHEET_MARGIN + (i * 8 + col) * TEXT_SCALE;
                    let y = SHEET_MARGIN + row * TEXT_SCALE;
                    let dark = (bits >> col) & 1 == 1;
                    assert_eq!(px[y * w + x] == 0, dark, "{c} row {row} col {col}");
                }
            }
        }
        // The empty line stays blank.
        let blank = SHEET_MARGIN + LINE_HEIGHT;
        assert!(px[blank * w..(blank + LINE_HEIGHT) * w]
            .iter()
            .all(|p| *p == 255));
        // The QR code's top-left finder pattern starts dark right after its quiet zone.
        let left = (w - qr_side) / 2;
        let corner = (text_height + QR_QUIET * QR_SCALE) * w + left + QR_QUIET * QR_SCALE;
        assert_eq!(px[corner], 0);
        assert_eq!(px[corner - 1], 255, "quiet zone");
    }

    #[test]
    fn long_lines_wrap_at_spaces() {
        assert_eq!(wrap("aaa bbb ccc", 7), vec!["aaa bbb", "ccc"]);
        assert_eq!(wrap("short", 80), vec!["short"]);
        assert_eq!(wrap("", 80), vec![""]);
        assert_eq!(
            wrap("averyverylongword x", 5),
            vec!["averyverylongword", "x"]
        );
    }

    #[test]
    fn non_ascii_text_is_drawn_as_a_question_mark() {
        let (w, _, a) = decode(&sheet_png(&["\u{e9}"], "X").unwrap());
        let (_, _, b) = decode(&sheet_png(&["?"], "X").unwrap());
        assert_eq!(a[..SHEET_MARGIN * 2 * w], b[..SHEET_MARGIN * 2 * w]);
        assert_eq!(a, b);
    }
}
