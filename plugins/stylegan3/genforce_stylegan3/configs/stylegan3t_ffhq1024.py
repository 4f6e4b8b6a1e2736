# StyleGAN3-T on FFHQ 1024x1024 (the official FFHQ-U/FFHQ 1024 setting): global batch 32 on 8
# GPUs, gamma 32.8, x-flips, no augmentation; everything as in _base_/models/stylegan3t.py.
#   genforce prepare-dataset ffhq/images1024x1024 data/ffhq/ffhq1024.zip
#   tools/dist_train.sh configs/stylegan3t_ffhq1024.py 8
_base_ = ['_base_/models/stylegan3t.py']
