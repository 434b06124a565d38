/**
 * (being written)
 *
 * @module
 */
export {};
