# StyleGAN2-ADA on BreCaHAD 512x512 crops (official cfg 'paper512', ADA 'bgc', x-flips).
# The paper cuts the 162 breast-cancer histopathology images (1360x1024) into 512x512 crops.
#   genforce prepare-dataset brecahad_crops512/ data/brecahad/brecahad512.zip --resolution 512
_base_ = ['stylegan2ada_afhqcat512.py']
train_dataloader = dict(dataset=dict(path='data/brecahad/brecahad512.zip'))
