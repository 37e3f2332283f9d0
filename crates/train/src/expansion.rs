//! Experimental, not kept: each weight trained as a product of two factors (plus, with
//! `EXPAND_BASE=1`, the weight itself), through Burn's parameter reparameterization, and
//! folded back into the network's six tensors by `materialize` when training ends. Measured on
//! validation (five seeds) it gave nothing; see the README's lever table.

use burn::module::{Param, Reparameterization, Reparameterizer};
use burn::prelude::*;
use burn::tensor::Distribution;

/// A weight's factors: `left · right`, reshaped to the weight.
#[derive(Module, Debug)]
pub struct Expansion {
    /// `[rows, width]`.
    pub left: Param<Tensor<2>>,
    /// `[width, cols]`.
    pub right: Param<Tensor<2>>,
    /// Adds the weight itself to the product.
    #[module(skip)]
    pub keep_base: bool,
}

impl Reparameterization for Expansion {
    const NAME: &'static str = "expansion";

    fn apply<const D: usize>(&self, base: Tensor<D>) -> Tensor<D> {
        let product = self.left.val().matmul(self.right.val()).reshape(base.shape());
        match self.keep_base {
            true => base + product,
            false => product,
        }
    }
}

/// Attaches an [`Expansion`] to every weight of two or more dimensions.
pub struct Expand {
    /// The factors' inner width.
    pub width: usize,
    /// Adds the weight itself to the product.
    pub keep_base: bool,
    /// The right factor's initial range, relative to the weight's own.
    pub right_scale: f64,
}

impl Reparameterizer for Expand {
    type Reparam = Expansion;

    fn reparameterize<const D: usize>(
        &mut self,
        _path: &str,
        param: Param<Tensor<D>>,
    ) -> (Param<Tensor<D>>, Option<Expansion>) {
        if D < 2 {
            return (param, None);
        }
        let shape = param.lazy_shape().dims::<D>();
        let device = param.lazy_device();
        // Conv weights are [out, in, k, k]: rows are outputs. Linear weights are [in, out].
        let (rows, cols, fan_in) = match D {
            2 => (shape[0], shape[1], shape[0]),
            _ => {
                let fan: usize = shape[1..].iter().product();
                (shape[0], fan, fan)
            }
        };
        let c = self.width;
        let left = Tensor::<2>::random(
            [rows, c],
            Distribution::Normal(0.0, (1.0 / c as f64).sqrt()),
            &device,
        );
        let bound = self.right_scale / (fan_in as f64).sqrt();
        let right = match bound > 0.0 {
            true => Tensor::<2>::random([c, cols], Distribution::Uniform(-bound, bound), &device),
            false => Tensor::<2>::zeros([c, cols], &device),
        };
        let expansion = Expansion {
            left: Param::from_tensor(left),
            right: Param::from_tensor(right),
            keep_base: self.keep_base,
        };
        (param, Some(expansion))
    }
}

/// From the environment, for experiments: EXPAND_WIDTH, EXPAND_BASE (1 keeps the base),
/// EXPAND_SCALE.
pub fn from_env() -> Option<Expand> {
    let width: usize = std::env::var("EXPAND_WIDTH").ok()?.parse().ok()?;
    let keep_base = std::env::var("EXPAND_BASE").map(|v| v == "1").unwrap_or(false);
    let right_scale = std::env::var("EXPAND_SCALE")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1.0);
    Some(Expand {
        width,
        keep_base,
        right_scale,
    })
}
