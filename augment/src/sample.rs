//! [`Sample`]: an 8-bit image (gray or RGB) and its class-index mask, the same size.

use image::{GrayImage, RgbImage};

use crate::error::{AugmentError, Result};

/// An image and its mask, which every geometric transform moves together.
///
/// `image` is row-major and interleaved (`channels` bytes a pixel, 1 = gray, 3 = RGB);
/// `mask` is row-major, one class index a pixel (255 = ignore).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sample {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Bytes per image pixel: 1 (gray) or 3 (RGB).
    pub channels: u8,
    /// `width * height * channels` image bytes.
    pub image: Vec<u8>,
    /// `width * height` mask bytes.
    pub mask: Vec<u8>,
}

impl Sample {
    /// A sample from raw buffers, checking that their sizes agree.
    pub fn new(
        width: u32,
        height: u32,
        channels: u8,
        image: Vec<u8>,
        mask: Vec<u8>,
    ) -> Result<Self> {
        if channels != 1 && channels != 3 {
            return Err(AugmentError::Shape(format!(
                "{channels} channels: only gray (1) and RGB (3) images are supported"
            )));
        }
        let n = width as usize * height as usize;
        if image.len() != n * channels as usize {
            return Err(AugmentError::Shape(format!(
                "image buffer has {} bytes, {width}x{height}x{channels} needs {}",
                image.len(),
                n * channels as usize
            )));
        }
        if mask.len() != n {
            return Err(AugmentError::Shape(format!(
                "mask has {} values but the image is {width}x{height} ({n} pixels)",
                mask.len()
            )));
        }
        Ok(Sample {
            width,
            height,
            channels,
            image,
            mask,
        })
    }

    /// An RGB image and its mask (`width * height` values).
    pub fn from_rgb(image: RgbImage, mask: Vec<u8>) -> Result<Self> {
        let (w, h) = image.dimensions();
        Sample::new(w, h, 3, image.into_raw(), mask)
    }

    /// A gray image and its mask (`width * height` values).
    pub fn from_gray(image: GrayImage, mask: Vec<u8>) -> Result<Self> {
        let (w, h) = image.dimensions();
        Sample::new(w, h, 1, image.into_raw(), mask)
    }

    /// The image as RGB (gray is repeated into three channels) and the mask.
    pub fn into_rgb(self) -> (RgbImage, Vec<u8>) {
        let img = self.rgb_image();
        (img, self.mask)
    }

    /// A copy of the image as RGB (gray is repeated into three channels).
    pub fn rgb_image(&self) -> RgbImage {
        let data = if self.channels == 3 {
            self.image.clone()
        } else {
            self.image.iter().flat_map(|&v| [v, v, v]).collect()
        };
        RgbImage::from_raw(self.width, self.height, data).expect("buffer size checked")
    }

    /// The mask as an 8-bit gray image (values are class indices, not intensities).
    pub fn mask_image(&self) -> GrayImage {
        GrayImage::from_raw(self.width, self.height, self.mask.clone()).expect("size checked")
    }

    /// Bytes per image row.
    pub(crate) fn stride(&self) -> usize {
        self.width as usize * self.channels as usize
    }

    /// An empty sample of this one's channel count, `w` by `h`.
    pub(crate) fn blank(w: usize, h: usize, channels: u8) -> Sample {
        Sample {
            width: w as u32,
            height: h as u32,
            channels,
            image: crate::pool::take(w * h * channels as usize),
            mask: crate::pool::take(w * h),
        }
    }

    /// Return this sample's buffers to the per-thread pool.
    pub(crate) fn recycle(self) {
        crate::pool::give(self.image);
        crate::pool::give(self.mask);
    }

    /// An owned copy whose buffers come from the pool.
    pub(crate) fn pooled_clone(&self) -> Sample {
        let mut image = crate::pool::take_empty(self.image.len());
        image.extend_from_slice(&self.image);
        let mut mask = crate::pool::take_empty(self.mask.len());
        mask.extend_from_slice(&self.mask);
        Sample {
            width: self.width,
            height: self.height,
            channels: self.channels,
            image,
            mask,
        }
    }
}
