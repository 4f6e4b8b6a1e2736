# An image dataset (folder, zip or LMDB; see `genforce prepare-dataset`) with x-flips.
# Configs set `train_dataloader.dataset.path` and `.resolution`; batch_size is per GPU.
train_dataloader = dict(
    batch_size=4,
    num_workers=3,
    persistent_workers=True,
    pin_memory=True,
    sampler=dict(type='ResumableInfiniteSampler', shuffle=True),
    dataset=dict(type='ImageDataset', path=None, resolution=None, xflip=True),
    collate_fn=dict(type='default_collate'),
)
