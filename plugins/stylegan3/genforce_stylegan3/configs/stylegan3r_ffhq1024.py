# StyleGAN3-R on FFHQ 1024x1024 (the official FFHQ-U/FFHQ 1024 setting): global batch 32 on 8
# GPUs, gamma 32.8, x-flips, no augmentation, blur of D's inputs from sigma 10 over 200 kimg.
#   genforce prepare-dataset ffhq/images1024x1024 data/ffhq/ffhq1024.zip
#   tools/dist_train.sh configs/stylegan3r_ffhq1024.py 8
_base_ = ['_base_/models/stylegan3r.py']
