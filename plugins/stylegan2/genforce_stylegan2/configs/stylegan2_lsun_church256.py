# StyleGAN2 config F on LSUN Church 256x256: config F's defaults (global batch 32 on 8 GPUs,
# gamma 10, EMA 10 kimg, full channels), without x-flips (config F's default; the FFHQ
# configs turn them on).
#   genforce prepare-dataset church_outdoor_images/ data/lsun/church256.lmdb --format lmdb \
#       --resolution 256 --transform center-crop
_base_ = ['_base_/models/stylegan2.py']
resolution = 256
model = dict(generator=dict(img_resolution=resolution),
             discriminator=dict(img_resolution=resolution))
train_dataloader = dict(batch_size=4, dataset=dict(path='data/lsun/church256.lmdb',
                                                   resolution=resolution, xflip=False))
train_cfg = dict(total_kimg=48000)
