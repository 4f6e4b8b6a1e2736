# StyleGAN2-ADA on AFHQ Wild 512x512: the AFHQ Cat settings (official cfg 'paper512', ADA 'bgc').
#   genforce prepare-dataset afhq/train/wild data/afhq/afhqwild512.zip --resolution 512
_base_ = ['stylegan2ada_afhqcat512.py']
train_dataloader = dict(dataset=dict(path='data/afhq/afhqwild512.zip'))
