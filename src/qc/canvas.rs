//! An RGB picture in memory and its PNG encoding: all the QC pictures need.

/// 8-bit RGB pixels, row by row from the top.
pub struct Canvas {
    /// Pixels across.
    pub width: u32,
    /// Pixels down.
    pub height: u32,
    rgb: Vec<u8>,
}

impl Canvas {
    /// A black picture.
    pub fn new(width: u32, height: u32) -> Self {
        Canvas {
            width,
            height,
            rgb: vec![0; 3 * width as usize * height as usize],
        }
    }

    /// The picture whose pixel at column `c`, row `r` is `pixel(c, r)`.
    pub fn from_fn(width: u32, height: u32, pixel: impl Fn(u32, u32) -> [u8; 3]) -> Self {
        let mut canvas = Canvas::new(width, height);
        for r in 0..height {
            for c in 0..width {
                let i = 3 * (r as usize * width as usize + c as usize);
                canvas.rgb[i..i + 3].copy_from_slice(&pixel(c, r));
            }
        }
        canvas
    }

    /// Copies `other` in with its top-left corner at `(x, y)`, cut at this picture's edges.
    pub fn paste(&mut self, other: &Canvas, x: u32, y: u32) {
        let w = other.width.min(self.width.saturating_sub(x)) as usize;
        for r in 0..other.height.min(self.height.saturating_sub(y)) as usize {
            let from = 3 * r * other.width as usize;
            let to = 3 * ((y as usize + r) * self.width as usize + x as usize);
            self.rgb[to..to + 3 * w].copy_from_slice(&other.rgb[from..from + 3 * w]);
        }
    }

    /// The picture as a PNG file's bytes.
    pub fn png(&self) -> Result<Vec<u8>, png::EncodingError> {
        let mut bytes = Vec::new();
        let mut encoder = png::Encoder::new(&mut bytes, self.width, self.height);
        encoder.set_color(png::ColorType::Rgb);
        encoder.set_depth(png::BitDepth::Eight);
        let mut writer = encoder.write_header()?;
        writer.write_image_data(&self.rgb)?;
        writer.finish()?;
        Ok(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pasted_pixels_land_where_asked_and_the_png_reads_back() {
        let mut canvas = Canvas::new(5, 4);
        let red = Canvas::from_fn(2, 2, |_, _| [255, 40, 40]);
        canvas.paste(&red, 4, 3); // cut at both edges: one pixel lands
        let bytes = canvas.png().unwrap();
        let mut reader = png::Decoder::new(std::io::Cursor::new(bytes))
            .read_info()
            .unwrap();
        let mut pixels = vec![0; reader.output_buffer_size().unwrap()];
        let info = reader.next_frame(&mut pixels).unwrap();
        assert_eq!((info.width, info.height), (5, 4));
        let at = |c: usize, r: usize| &pixels[3 * (r * 5 + c)..3 * (r * 5 + c) + 3];
        assert_eq!(at(4, 3), [255, 40, 40]);
        assert_eq!(at(3, 3), [0, 0, 0]);
        assert_eq!(pixels.iter().filter(|&&v| v == 255).count(), 1);
    }
}
