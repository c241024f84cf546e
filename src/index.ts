/**
 * iaas — Imaging-as-a-Service. The package's main entry: the rendering engine
 * (probe, render, prepareOriginal), the render pool, and error codes.
 */
export { prepareOriginal, probe, render, summariseOriginal } from './render/engine.js';
export type { PreparedOriginal, RenderResult, SummarisedOriginal } from './render/engine.js';
export type { ImageSummary } from './render/summary.js';
export { createRenderPool, resolvePoolOptions } from './render/pool.js';
export type { RenderPool, RenderPoolOptions, RenderPoolStats } from './render/pool.js';
export { DEFAULT_MAX_INPUT_PIXELS, FITS, GRAVITIES, MAX_DIMENSION, OUTPUT_FORMATS } from './render/options.js';
export type { Colour, FocalPoint, PrepareOptions, RenderOptions } from './render/options.js';
export type { Fit, Gravity, InputFormat, OutputFormat, ProbeResult, VipsStats } from './render/native.js';
export { ERROR_STATUS, ImageError, publicMessage, statusOf } from './errors.js';
export type { ErrorCode } from './errors.js';
export { encodeRaw, decodeRaw, libvipsVersion, vipsStats } from './render/tools.js';
