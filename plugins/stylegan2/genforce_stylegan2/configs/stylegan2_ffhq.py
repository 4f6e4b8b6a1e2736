# StyleGAN2 config F on FFHQ 1024x1024 (official cfg 'stylegan2'): global batch 32 on 8 GPUs
# (4 per GPU), gamma 10, 25000 kimg.
#   genforce prepare-dataset ~/images1024x1024 data/ffhq/ffhq1024.zip --resolution 1024
#   tools/dist_train.sh configs/stylegan2_ffhq.py 8
_base_ = ['_base_/models/stylegan2.py']
train_dataloader = dict(batch_size=4,
                        dataset=dict(path='data/ffhq/ffhq1024.zip', resolution=1024))
