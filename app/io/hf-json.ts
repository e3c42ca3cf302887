/**
 * config.json as Hugging Face writes it. JSON has one number type, but transformers ≥ 5 validates
 * configs as strict dataclasses: `router_jitter_noise: 0` is refused where `0.0` is expected. Known
 * float fields are therefore written with a decimal point even when they hold whole numbers.
 */
const FLOAT_KEYS = new Set([
  'rope_theta', 'rms_norm_eps', 'layer_norm_eps', 'initializer_range', 'attention_dropout', 'hidden_dropout', 'embd_pdrop', 'resid_pdrop',
  'router_jitter_noise', 'router_aux_loss_coef', 'partial_rotary_factor', 'factor', 'low_freq_factor', 'high_freq_factor', 'beta_fast', 'beta_slow',
  'attention_factor', 'mscale', 'mscale_all_dim',
]);

export function stringifyHfConfig(config: Record<string, unknown>): string {
  const marker = '__upcycle_float__';
  const json = JSON.stringify(config, (key, value: unknown) => (FLOAT_KEYS.has(key) && typeof value === 'number' && Number.isInteger(value) ? `${marker}${value}.0` : value), 2);
  return json.replace(/"__upcycle_float__(-?\d+\.0)"/g, '$1') + '\n';
}
