import { describe, expect, it } from 'vitest';
import { InputError } from '../../src/errors.js';
import { type Calibration, calibrationId, calibrationText, parseCalibration } from '../../src/quantize/calibration.js';

const CAL: Calibration = { rule: 'min/max over the first 2 images', images: 2, weightRange: 63, tensors: { images: [0.017, 118], relu0: [0.03, 0] } };

describe('calibration text', () => {
  it('reads back what it writes, and the id changes with any scale', () => {
    expect(parseCalibration(calibrationText(CAL), 'x.h5')).toEqual(CAL);
    expect(calibrationId(CAL)).toMatch(/^[0-9a-f]{12}$/);
    expect(calibrationId({ ...CAL, tensors: { ...CAL.tensors, relu0: [0.0300001, 0] } })).not.toBe(calibrationId(CAL));
  });

  it('names the file and what is wrong for text that is not a calibration', () => {
    const cases: [string, string][] = [
      ['{', 'cache/a.h5 has a calibration that cannot be read (not JSON); extract again with --force'],
      ['{"rule":"r","images":2}', 'cache/a.h5 has a calibration that cannot be read (rule, images or weightRange missing); extract again with --force'],
      ['{"rule":"r","images":2,"weightRange":63}', 'cache/a.h5 has a calibration that cannot be read (no tensors); extract again with --force'],
      [
        '{"rule":"r","images":2,"weightRange":63,"tensors":{"t":[0,300]}}',
        'cache/a.h5 has a calibration that cannot be read (tensor t: expected [scale > 0, zero point 0..255]); extract again with --force',
      ],
    ];
    for (const [text, message] of cases) {
      expect(() => parseCalibration(text, 'cache/a.h5')).toThrow(InputError);
      expect(() => parseCalibration(text, 'cache/a.h5')).toThrow(message);
    }
  });
});
