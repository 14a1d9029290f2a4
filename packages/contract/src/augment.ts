/** `augment`: random augmentation of the training images of a fine-tune or tune. */
import { z } from 'zod';

/**
 * Random augmentation of training images, on the fly and seeded, with the semantics of Keras'
 * preprocessing layers RandomFlip, RandomRotation, RandomZoom, RandomTranslation and RandomContrast
 * (packages/core/src/data/pipeline/augment.ts). Training batches only: validation, evaluate and
 * predict never see it.
 */
export const augmentSchema = z
  .strictObject({
    flip: z.enum(['horizontal', 'vertical', 'horizontal_and_vertical']).optional(),
    /** RandomRotation's factor: angles up to ±rotate × 2π. */
    rotate: z.number().min(0).max(0.5).optional(),
    /** RandomZoom's factor: scales in [1 - zoom, 1 + zoom]. */
    zoom: z.number().min(0).max(0.9).optional(),
    /** RandomTranslation's factor, for height and width: shifts up to ±translate of each. */
    translate: z.number().min(0).max(1).optional(),
    /** RandomContrast's factor: contrast factors in [1 - contrast, 1 + contrast]. */
    contrast: z.number().min(0).max(1).optional(),
  })
  .refine((a) => Object.values(a).some((v) => v !== undefined && v !== 0), {
    message: 'give at least one of flip, rotate, zoom, translate, contrast',
  });
export type AugmentSpec = z.infer<typeof augmentSchema>;

/** Dataset formats whose rows are images ([h, w, c]): the ones `augment` applies to. */
export const imageDatasetFormats = ['image-folder', 'mnist'] as const;

/** Refinement: `augment` needs a dataset of images. */
export function checkAugment(
  p: { augment?: AugmentSpec | undefined; dataset: { format: string } },
  ctx: z.RefinementCtx,
): void {
  if (p.augment && !(imageDatasetFormats as readonly string[]).includes(p.dataset.format))
    ctx.addIssue({
      code: 'custom',
      path: ['augment'],
      message: `augmentation applies to image datasets (${imageDatasetFormats.join(', ')}), not ${p.dataset.format}`,
    });
}
