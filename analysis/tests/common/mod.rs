pub mod fake_tempo;
pub mod replay;
